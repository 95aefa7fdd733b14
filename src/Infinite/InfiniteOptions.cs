using Infinite.Engine;
using Infinite.Native;

namespace Infinite;

/// <summary>How <see cref="InfiniteEngine"/> loads a model and serves it. Every property has a working default.</summary>
public sealed record InfiniteOptions
{
    /// <summary>Device to run on: "cpu" (default) or "cuda", "cuda:1".</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>
    /// Element type of the KV cache; bf16 halves memory and read time against f32 at ~1e-3 relative error;
    /// <see cref="DataType.I8"/> (CPU only) halves them again: int8 codes with a float scale per token and KV head,
    /// at most half a step (max|row| / 254) of error per element.
    /// </summary>
    public DataType KvType { get; init; } = DataType.Bf16;

    /// <summary>Tokens per KV page (a power of two, 16 to 256).</summary>
    public int PageSize { get; init; } = 64;

    /// <summary>Storage of the key min/max page summaries sparse page selection scores: 8 (int8 with a scale per
    /// 16-token sub-page and head, rounded outward: a quarter of float32's bytes, scored with byte dot products where
    /// the CPU has AVX-512 VNNI), 16 (bfloat16) or 32 (float32). Needle recall and output error measured the same at
    /// every width (docs/PERFORMANCE.md).</summary>
    public int SummaryBits { get; init; } = 8;

    /// <summary>Bytes of KV cache to reserve at load (all of it up front: no allocation while serving).</summary>
    public long KvMemoryBytes { get; init; } = 2L << 30;

    /// <summary>Longest context a request may use; 0 = the model's own context length.</summary>
    public int MaxContext { get; init; }

    /// <summary>Tokens fed to the model per step (decodes plus prefill chunks).</summary>
    public int MaxBatchTokens { get; init; } = 2048;

    /// <summary>Requests in the running batch at once.</summary>
    public int MaxRunningRequests { get; init; } = 64;

    /// <summary>Requests waiting for admission before <see cref="EngineOverloadedException"/>.</summary>
    public int MaxQueuedRequests { get; init; } = 256;

    /// <summary>LServe-style sparse attention; null = dense (required with several instances).</summary>
    public SparseOptions? Sparse { get; init; }

    /// <summary>In-process instances the KV cache is spread over (DistAttention): each has its own page pool of
    /// <see cref="KvMemoryBytes"/> / Instances bytes and they share the loaded weights. A request gets a home instance
    /// and, with the borrowing policy, may hold pages on the others. Default 1: one pool.</summary>
    public int Instances { get; init; } = 1;

    /// <summary>Placement policy, thresholds and page migration of several instances.</summary>
    public ClusterOptions Cluster { get; init; } = new();

    /// <summary>With several instances: how long one waits for another's message before the step fails naming it.</summary>
    public TimeSpan CommunicationTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>One instance per MPI rank (<c>mpirun -np N</c>; needs Open MPI and libinfinite_mpi.so): every rank
    /// loads the model and reserves <see cref="KvMemoryBytes"/> of KV pages of its own; rank 0 gets the engine (and the
    /// gManager), the other ranks serve it through <see cref="InfiniteEngine.RunMpiWorkerAsync"/>. Not combined with
    /// <see cref="Instances"/> &gt; 1 or sparse attention.</summary>
    public bool Mpi { get; init; }
}
