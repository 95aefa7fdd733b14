namespace Infinite.Cluster;

/// <summary>
/// The vLLM-M baseline: independent instances, each request bound to one of them for its whole life, never borrowing
/// or migrating. A request that does not fit one instance's pool cannot be served.
/// </summary>
public sealed class StaticPolicy : IPlacementPolicy
{
    /// <summary>Never: a request lives on its home's pool alone.</summary>
    public bool AllowsBorrowing => false;

    /// <summary>The least-loaded live instance (fewest requests, then most free pages, then lowest index) with
    /// <paramref name="pages"/> free pages; -1 when none has them.</summary>
    public int ChooseHome(IReadOnlyList<InstanceView> instances, int pages)
    {
        ArgumentNullException.ThrowIfNull(instances);
        ArgumentOutOfRangeException.ThrowIfNegative(pages);
        return LeastLoadedWithRoom(instances, pages);
    }

    /// <summary>None: no request borrows.</summary>
    public IReadOnlyList<int> ChooseCreditors(IReadOnlyList<InstanceView> instances, int debtor) => [];

    /// <summary>None: a request stays bound to its instance.</summary>
    public IReadOnlyList<PageMove> PlanMoves(ClusterView view) => [];

    internal static int LeastLoadedWithRoom(IReadOnlyList<InstanceView> instances, int pages)
    {
        int best = -1;
        foreach (InstanceView v in instances)
        {
            if (v.Failed || v.FreePages < pages)
                continue;
            if (best < 0 || v.RunningRequests < instances[best].RunningRequests
                || (v.RunningRequests == instances[best].RunningRequests && v.FreePages > instances[best].FreePages))
                best = v.Instance;
        }
        return best;
    }
}
