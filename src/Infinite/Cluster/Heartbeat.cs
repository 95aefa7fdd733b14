namespace Infinite.Cluster;

/// <summary>
/// What an rManager sends the gManager: the placement entries that changed since its previous heartbeat (or all of
/// them when <see cref="Full"/>) and its instance's state. <see cref="Sequence"/> numbers delta heartbeats 1, 2, ...
/// so a gManager that missed one notices and asks for a full one; a full heartbeat carries the number of the last
/// delta it includes.
/// </summary>
public sealed record Heartbeat(int Instance, long Sequence, bool Full, IReadOnlyList<HeartbeatEntry> Entries,
    InstanceView State);
