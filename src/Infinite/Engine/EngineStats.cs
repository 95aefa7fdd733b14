namespace Infinite.Engine;

/// <summary>A consistent snapshot of the engine's state and counters since it started.</summary>
public sealed record EngineStats(
    int QueuedRequests,
    int RunningRequests,
    int PagesUsed,
    int PagesFree,
    int PagesTotal,
    long Steps,
    long TokensIn,
    long TokensOut,
    long Preemptions);
