namespace Infinite.Cluster;

/// <summary>
/// The gManager's decisions, as a pluggable strategy: where a new request lives, whom a debtor borrows from, and which
/// pages to migrate. Policies see only what heartbeats tell the gManager (possibly stale); the rManagers stay the
/// authority, so a policy's wrong guess is refused, never corrupting.
/// </summary>
public interface IPlacementPolicy
{
    /// <summary>Whether a request may hold pages on instances other than its home.</summary>
    bool AllowsBorrowing { get; }

    /// <summary>The home for a new request expected to need <paramref name="pages"/> pages, or -1 when no instance
    /// can take it now.</summary>
    int ChooseHome(IReadOnlyList<InstanceView> instances, int pages);

    /// <summary>Instances a request homed on <paramref name="debtor"/> should borrow from, best first (empty when
    /// borrowing is not allowed).</summary>
    IReadOnlyList<int> ChooseCreditors(IReadOnlyList<InstanceView> instances, int debtor);

    /// <summary>Migrations that the policy expects to raise cluster throughput, in the order to apply them.</summary>
    IReadOnlyList<PageMove> PlanMoves(ClusterView view);
}
