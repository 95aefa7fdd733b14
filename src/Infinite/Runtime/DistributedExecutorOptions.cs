namespace Infinite.Runtime;

/// <summary>How a <see cref="DistributedExecutor"/> builds its in-process instances.</summary>
public sealed record DistributedExecutorOptions
{
    /// <summary>Instances (KV page pools with their own communicator endpoint) sharing one model: 1 to 1024.</summary>
    public int Instances { get; init; } = 2;

    /// <summary>Each instance's pool: KV type, page size, and <see cref="NativeExecutorOptions.PageCount"/> or
    /// <see cref="NativeExecutorOptions.KvMemoryBytes"/> per instance (split a total budget before passing it).
    /// Selection slots must be 0: sparse attention is not combined with the exchange yet.</summary>
    public NativeExecutorOptions Instance { get; init; } = new();

    /// <summary>How long an instance waits for a peer's message before the step fails with
    /// <see cref="Engine.InstanceFailedException"/> naming that peer.</summary>
    public TimeSpan CommunicationTimeout { get; init; } = TimeSpan.FromSeconds(30);
}
