namespace Infinite.Simulation;

/// <summary>
/// The priced parts of one instance step, in seconds. <see cref="Total"/> is how they combine: non-attention
/// GEMMs, then attention where the remote part (creditor attention plus query/partial exchange) overlaps the local
/// part, tensor-parallel all-reduces, per-layer overheads; page migration overlaps the whole step on the links.
/// </summary>
public readonly record struct StepCost(
    double GemmSeconds,
    double LocalAttentionSeconds,
    double RemoteAttentionSeconds,
    double AllReduceSeconds,
    double OverheadSeconds,
    double MigrationSeconds)
{
    /// <summary>Compute path of the step: GEMMs, the slower of local and remote attention, all-reduces, overheads.</summary>
    public double ComputeSeconds => GemmSeconds + Math.Max(LocalAttentionSeconds, RemoteAttentionSeconds) + AllReduceSeconds + OverheadSeconds;

    /// <summary>Step time: migration hides behind compute unless it takes longer than the step.</summary>
    public double Total => Math.Max(ComputeSeconds, MigrationSeconds);

    /// <summary>The instance's share of a cluster step on a shared host (<see cref="SimulationOptions.SharedHost"/>):
    /// every part runs on the same cores one after the other, so the remote part (attention over lent pages and the
    /// exchange) adds to the local one instead of overlapping it.</summary>
    public double SharedHostSeconds => Math.Max(GemmSeconds + LocalAttentionSeconds + RemoteAttentionSeconds
        + AllReduceSeconds + OverheadSeconds, MigrationSeconds);
}
