namespace Infinite.Cluster;

/// <summary>Settings of a <see cref="GManager"/>.</summary>
public sealed record GManagerOptions
{
    /// <summary>
    /// KV tokens' worth of pages a move plan may migrate, per plan (plans are meant to run once per decode step).
    /// Default 16: the paper measured migration of 16 tokens per decode step as fully hidden behind inference and 32
    /// as costing 8.6% throughput. Budget left unused (pages larger than this) accumulates across plans, up to one
    /// page or one plan's worth, whichever is larger, so a big page still moves every few plans.
    /// </summary>
    public int MaxMoveTokensPerPlan { get; init; } = 16;
}
