using Infinite.Cluster;

namespace Infinite.Engine;

/// <summary>Which placement policy a cluster of instances uses.</summary>
public enum ClusterPolicy
{
    /// <summary>The paper's policy: a request that outgrows its home borrows pages on creditors, and the gManager
    /// migrates pages between instances when its cost model says the pair gains.</summary>
    Borrowing,

    /// <summary>The vLLM-M baseline: each request bound to one instance, never borrowing nor migrating; a request
    /// larger than one instance's pool is rejected.</summary>
    Static,
}

/// <summary>
/// How an <see cref="InferenceEngine"/> spreads KV pages when its executor has several instances (ignored for one):
/// the placement policy and its thresholds, the rManagers' lending cap, and how many pages may migrate per step.
/// </summary>
public sealed record ClusterOptions
{
    public ClusterPolicy Policy { get; init; } = ClusterPolicy.Borrowing;

    /// <summary>A policy of one's own; when set it replaces <see cref="Policy"/> (the strategy is pluggable).</summary>
    public IPlacementPolicy? CustomPolicy { get; init; }

    /// <summary>Thresholds of <see cref="ClusterPolicy.Borrowing"/>: debtor batch, creditor utilisation, minimum gain.</summary>
    public BorrowingOptions Borrowing { get; init; } = new();

    /// <summary>The borrowing policy's cost model; null: <see cref="LinearCostModel"/> with its defaults.</summary>
    public ICostModel? CostModel { get; init; }

    /// <summary>Each instance's lending cap (the fraction of its pool it may lend).</summary>
    public RManagerOptions RManager { get; init; } = new();

    /// <summary>The gManager's move throttle (KV tokens' worth of pages per plan).</summary>
    public GManagerOptions GManager { get; init; } = new();

    /// <summary>Apply the gManager's planned page moves between steps (two-phase: reserve, copy, commit).</summary>
    public bool MovePages { get; init; } = true;

    /// <summary>Most pages migrated between two steps, whatever the plan asks: a move copies every layer's K and V
    /// and stalls the step loop meanwhile, so this bounds the stall.</summary>
    public int MaxMovePagesPerStep { get; init; } = 64;

    /// <summary>The policy these options describe.</summary>
    public IPlacementPolicy CreatePolicy() => CustomPolicy ?? Policy switch
    {
        ClusterPolicy.Static => new StaticPolicy(),
        _ => new BorrowingPolicy(CostModel ?? new LinearCostModel(), Borrowing),
    };
}
