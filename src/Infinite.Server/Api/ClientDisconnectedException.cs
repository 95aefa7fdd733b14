namespace Infinite.Server.Api;

/// <summary>The client closed its connection while the response was being written.</summary>
internal sealed class ClientDisconnectedException : OperationCanceledException
{
    public ClientDisconnectedException(CancellationToken token)
        : base("The client closed the connection.", token)
    {
    }
}
