using Infinite.Cluster;

namespace Infinite.Simulation;

/// <summary>
/// A policy that runs the real cluster scheduler: a <see cref="ClusterPageSpace"/> (one <see cref="RManager"/> per
/// instance, a <see cref="GManager"/> fed by their heartbeats) over the placement strategy that
/// <see cref="CreatePolicy"/> returns. Moves go through the page space's two-phase protocol: the destination's
/// rManager reserves first (first come, first served), the simulator "copies" (the bytes are charged to both
/// instances' next steps), then commits.
/// </summary>
public abstract class ClusterSpacePolicy : SimulationPolicy
{
    /// <summary>Lending cap of every rManager (<see cref="RManagerOptions.LendingCap"/>).</summary>
    public double LendingCap { get; init; } = new RManagerOptions().LendingCap;

    /// <summary>Idle instances lend all their free pages (<see cref="RManagerOptions.LendAllWhenIdle"/>).</summary>
    public bool LendAllWhenIdle { get; init; }

    /// <summary>A borrowing request's pages are balanced over its home and creditors
    /// (<see cref="ClusterPageSpace.SpreadBorrowing"/>).</summary>
    public bool SpreadBorrowing { get; init; }

    /// <summary>Move budget per plan, in KV tokens (<see cref="GManagerOptions.MaxMoveTokensPerPlan"/>); the
    /// simulator sets it to the per-step budget times the steps between plans.</summary>
    public int MoveTokensPerPlan { get; init; } = new GManagerOptions().MaxMoveTokensPerPlan;

    /// <summary>The gManager's strategy for this layout.</summary>
    protected abstract IPlacementPolicy CreatePolicy(ClusterLayout layout);

    public override IKvPageSpace CreatePageSpace(ClusterLayout layout)
    {
        ArgumentNullException.ThrowIfNull(layout);
        return new ClusterPageSpace(layout.Instances, layout.PagesPerInstance, layout.PageTokens, CreatePolicy(layout),
            new RManagerOptions { LendingCap = LendingCap, LendAllWhenIdle = LendAllWhenIdle },
            new GManagerOptions { MaxMoveTokensPerPlan = MoveTokensPerPlan })
        {
            SpreadBorrowing = SpreadBorrowing,
        };
    }

    internal override void ReportWaiting(IKvPageSpace space, int instance, int waiting) =>
        Cluster(space).RManagers[instance].WaitingRequests = waiting;

    internal override void ReportBatch(IKvPageSpace space, int instance, int batchTokens) =>
        Cluster(space).RManagers[instance].BatchTokens = batchTokens;

    internal override IReadOnlyList<PageMove> PlanMoves(IKvPageSpace space, Demand demand) => Cluster(space).PlanMoves(demand);

    internal override int TryMove(IKvPageSpace space, PageMove move)
    {
        ClusterPageSpace cluster = Cluster(space);
        PreparedMove? prepared = cluster.PrepareMove(move);
        if (prepared is null)
            return 0;
        int pages = prepared.Copies.Count;
        return cluster.CommitMove(prepared) ? pages : 0;
    }

    private static ClusterPageSpace Cluster(IKvPageSpace space) =>
        space as ClusterPageSpace ?? throw new ArgumentException($"Expected a {nameof(ClusterPageSpace)}, got {space?.GetType().Name}.", nameof(space));
}
