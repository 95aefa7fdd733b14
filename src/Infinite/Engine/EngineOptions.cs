namespace Infinite.Engine;

/// <summary>Scheduling limits and behaviour of an <see cref="InferenceEngine"/>.</summary>
public sealed record EngineOptions
{
    /// <summary>Tokens fed to the model per step (decodes + prefill chunks).</summary>
    public int MaxBatchTokens { get; init; } = 2048;
    /// <summary>Requests admitted to the batch at once (in sparse mode also capped by the executor's slots).</summary>
    public int MaxRunningRequests { get; init; } = 256;
    /// <summary>Requests waiting for admission; one more throws <see cref="EngineOverloadedException"/>.</summary>
    public int MaxQueuedRequests { get; init; } = 1024;
    /// <summary>On dispose, finish in-flight requests instead of cancelling them.</summary>
    public bool DrainOnDispose { get; init; }
    /// <summary>Dispose the executor with the engine (otherwise the caller owns it).</summary>
    public bool OwnsExecutor { get; init; }
    /// <summary>Longest prompt + completion a request may use; 0 = the model's context length.</summary>
    public int MaxContext { get; init; }

    /// <summary>Null: dense attention.</summary>
    public SparseOptions? Sparse { get; init; }

    /// <summary>Placement, borrowing and migration of KV pages when the executor has several instances
    /// (<see cref="IModelExecutor.Instances"/> &gt; 1); ignored for one.</summary>
    public ClusterOptions Cluster { get; init; } = new();
}
