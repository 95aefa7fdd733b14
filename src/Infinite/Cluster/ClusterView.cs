namespace Infinite.Cluster;

/// <summary>
/// A snapshot of the cluster for a placement policy: instances, where each request's pages lie, tokens per page, and
/// the waiting demand. Built by the gManager from heartbeats, or directly by tests and the simulator.
/// </summary>
public sealed class ClusterView
{
    /// <summary>Checks that instance views are indexed 0..N-1 and that placements name only those instances.</summary>
    public ClusterView(int pageSize, IReadOnlyList<InstanceView> instances, IReadOnlyList<RequestPlacement> requests,
        Demand demand = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(pageSize);
        ArgumentNullException.ThrowIfNull(instances);
        ArgumentNullException.ThrowIfNull(requests);
        for (int i = 0; i < instances.Count; i++)
        {
            if (instances[i].Instance != i)
                throw new ArgumentException($"Instance view {i} names instance {instances[i].Instance}.", nameof(instances));
        }
        foreach (RequestPlacement r in requests)
        {
            if ((uint)r.Home >= (uint)instances.Count || r.Blocks.Keys.Any(i => (uint)i >= (uint)instances.Count))
                throw new ArgumentException($"Request {r.RequestId} names an instance outside 0..{instances.Count - 1}.", nameof(requests));
        }
        ArgumentOutOfRangeException.ThrowIfNegative(demand.Requests, nameof(demand));
        ArgumentOutOfRangeException.ThrowIfNegative(demand.BlocksPerRequest, nameof(demand));
        PageSize = pageSize;
        Instances = instances;
        Requests = requests;
        Demand = demand;
    }

    /// <summary>Tokens per page.</summary>
    public int PageSize { get; }
    /// <summary>One view per instance, index = instance.</summary>
    public IReadOnlyList<InstanceView> Instances { get; }
    /// <summary>Requests whose home is known, with their pages per instance.</summary>
    public IReadOnlyList<RequestPlacement> Requests { get; }
    /// <summary>Waiting requests that freed memory could admit.</summary>
    public Demand Demand { get; }
}
