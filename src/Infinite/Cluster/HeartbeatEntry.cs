namespace Infinite.Cluster;

/// <summary>
/// One line of an rManager heartbeat (the paper's <c>[request, instance, blocks, local]</c>): <paramref name="Instance"/>
/// holds <paramref name="Blocks"/> pages of the request (reserved move targets included); <paramref name="Local"/> when
/// the request is homed there. Blocks 0 with Local false means the instance no longer holds anything of the request.
/// Values are absolute, so applying an entry twice is harmless.
/// </summary>
public readonly record struct HeartbeatEntry(long RequestId, int Instance, int Blocks, bool Local);
