namespace Infinite.Native;

/// <summary>
/// What a <see cref="Communicator"/> is and what it has moved since it was created (mirrors <c>inf_comm_info</c>):
/// the traffic figures are what the exchange benchmarks report, so they come from the native side, which counts
/// every message including the step exchange's own.
/// </summary>
public readonly record struct CommInfo(
    CommKind Kind,
    int Rank,
    int Size,
    TimeSpan Timeout,
    ulong BytesSent,
    ulong BytesReceived,
    ulong MessagesSent,
    ulong MessagesReceived)
{
    internal static CommInfo FromNative(in inf_comm_info info) => new(
        (CommKind)(int)info.kind, info.rank, info.group_size, TimeSpan.FromMilliseconds(info.timeout_ms),
        info.bytes_sent, info.bytes_received, info.messages_sent, info.messages_received);
}
