namespace Infinite.Cluster;

/// <summary>Where a request's KV lies: its home and the pages it holds on each instance (home included).</summary>
public sealed record RequestPlacement(long RequestId, int Home, IReadOnlyDictionary<int, int> Blocks)
{
    /// <summary>Pages on all instances.</summary>
    public int TotalBlocks => Blocks.Values.Sum();

    /// <summary>Pages on the home instance.</summary>
    public int LocalBlocks => Blocks.GetValueOrDefault(Home);
}
