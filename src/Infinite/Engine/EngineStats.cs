namespace Infinite.Engine;

/// <summary>A consistent snapshot of the engine's state and counters since it started. With several instances the
/// page totals are the cluster's (free pages of failed instances excluded from <see cref="PagesFree"/>) and
/// <see cref="Instances"/> breaks them down.</summary>
public sealed record EngineStats(
    int QueuedRequests,
    int RunningRequests,
    int PagesUsed,
    int PagesFree,
    int PagesTotal,
    long Steps,
    long TokensIn,
    long TokensOut,
    long Preemptions)
{
    /// <summary>Per instance (index = instance): pages used, free, lent and borrowed. One entry for one device.</summary>
    public IReadOnlyList<InstancePageStats> Instances { get; init; } = [];

    /// <summary>KV pages migrated between instances (committed moves).</summary>
    public long PagesMoved { get; init; }

    /// <summary>Instances marked failed since the engine started.</summary>
    public int FailedInstances { get; init; }
    /// <summary>Pages of the streaming heads' rings (<see cref="StreamingStorage.Ring"/>) held by running requests, and
    /// in all (one ring per request slot); 0 without rings.</summary>
    public int RingPagesUsed { get; init; }
    public int RingPagesTotal { get; init; }
}

/// <summary>
/// One instance's KV pages: <see cref="Own"/> held by requests homed here, <see cref="Lent"/> held here by requests
/// homed elsewhere, <see cref="Free"/>; <c>Own + Lent + Free == Total</c> always (a failed instance keeps counting, it
/// only stops handing pages out). <see cref="Borrowed"/> counts pages on other instances held by requests homed here.
/// </summary>
public sealed record InstancePageStats(int Instance, int Total, int Own, int Lent, int Free, int Borrowed, bool Failed)
{
    /// <summary>Pages of this instance's pool in use (own + lent).</summary>
    public int Used => Own + Lent;
}
