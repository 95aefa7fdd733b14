namespace Infinite.Native;

/// <summary>
/// A peer instance is gone (its communicator was destroyed or its process died) or broke the protocol
/// (<c>INF_STATUS_PEER_FAILED</c>). Raised at once, without waiting for a timeout, so a distributed executor can
/// tell which instance failed and fail only the work that depended on it.
/// </summary>
public sealed class PeerFailedException : InfiniteException
{
    public PeerFailedException(string function, string nativeMessage)
        : base(InfiniteStatus.PeerFailed, function, nativeMessage)
    {
        Peer = PeerNumber.Parse(nativeMessage);
    }

    /// <summary>The rank of the failed peer, as the native message names it; null when it names none.</summary>
    public int? Peer { get; }
}
