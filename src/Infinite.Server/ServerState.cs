using System.Diagnostics;

namespace Infinite.Server;

/// <summary>Whether the server takes new generation requests. It stops taking them when the host begins to stop
/// (in-flight ones drain) or once the engine has been seen disposed or faulted; the engine has no public flag for
/// that, so a failed submission is the signal.</summary>
internal sealed class ServerState
{
    private volatile bool _draining;
    private volatile string? _engineProblem;

    public ServerState(string modelId)
    {
        ModelId = modelId;
        Created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
    }

    public string ModelId { get; }

    /// <summary>Unix seconds of start, the "created" of the model object.</summary>
    public long Created { get; }

    public bool IsDraining => _draining;

    /// <summary>Null when requests are accepted; otherwise why not.</summary>
    public string? NotAcceptingReason => _draining
        ? "The server is shutting down and accepts no new requests."
        : _engineProblem;

    public void BeginDrain() => _draining = true;

    public void MarkEngineUnavailable(string reason)
    {
        Debug.Assert(!string.IsNullOrEmpty(reason));
        _engineProblem = reason;
    }
}
