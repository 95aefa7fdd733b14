namespace Infinite.Cluster;

/// <summary>
/// What the gManager knows of one instance from its last heartbeat: pool size, free pages, how many more it may lend
/// (min of free pages and what its lending cap leaves), the requests homed there (its decode batch) and the tokens of
/// its last step as reported by the engine or simulator.
/// </summary>
public readonly record struct InstanceView(int Instance, int TotalPages, int FreePages, int LendablePages,
    int RunningRequests, int BatchTokens, bool Failed)
{
    /// <summary>Fraction of the pool in use (1 for a failed or empty instance, so it is never a creditor).</summary>
    public double Utilisation => Failed || TotalPages == 0 ? 1.0 : 1.0 - (double)FreePages / TotalPages;
}
