namespace Infinite.Native;

/// <summary>
/// A communication did not complete within the communicator's <see cref="Communicator.Timeout"/>
/// (<c>INF_STATUS_TIMEOUT</c>). The peer may be slow, hung or dead: the caller decides, which is why this is
/// its own type rather than a generic native failure.
/// </summary>
public sealed class CommunicationTimeoutException : InfiniteException
{
    public CommunicationTimeoutException(string function, string nativeMessage)
        : base(InfiniteStatus.Timeout, function, nativeMessage)
    {
        Peer = PeerNumber.Parse(nativeMessage);
    }

    /// <summary>The peer the call waited for, as the native message names it; null when it names none.</summary>
    public int? Peer { get; }
}
