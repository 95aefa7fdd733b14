namespace Infinite.Simulation;

/// <summary>
/// What happened to one request: served (with time to first token, time per output token and completion time,
/// all in seconds) or rejected with the reason, and the instance it was (last) homed on, -1 when never admitted.
/// </summary>
public sealed record RequestOutcome(
    int Index,
    WorkloadRequest Request,
    bool Served,
    double TimeToFirstToken,
    double TimePerOutputToken,
    double Completion,
    int Preemptions,
    string? RejectReason,
    int Home = -1);
