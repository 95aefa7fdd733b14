namespace Infinite.Engine;

/// <summary>
/// LServe-style sparse attention: streaming heads see sink + local windows; retrieval heads read a page selection
/// that is recomputed on a request's first decode step and then every <see cref="ReuseInterval"/> decode steps.
/// </summary>
public sealed record SparseOptions
{
    /// <summary>[layers * kvHeads] flags (streaming head = true), or null for none.</summary>
    public IReadOnlyList<bool>? StreamingHeads { get; init; }
    public int DecodeSinkTokens { get; init; } = 128;
    public int DecodeLocalTokens { get; init; } = 256;
    public int PrefillSinkTokens { get; init; } = 128;
    public int PrefillLocalTokens { get; init; } = 1024;
    /// <summary>Token budget of retrieval heads at decode; 0 = dense retrieval heads.</summary>
    public int BudgetTokens { get; init; } = 4096;
    public bool PerQueryHead { get; init; }
    /// <summary>Decode steps a page selection is reused for (R); 1 = reselect every step.</summary>
    public int ReuseInterval { get; init; } = 4;
    /// <summary>Where streaming heads keep their KV: <see cref="StreamingStorage.Paged"/> (the request's pages) or
    /// <see cref="StreamingStorage.Ring"/> (a fixed ring per request, which the executor must keep: see
    /// <see cref="IModelExecutor.RingPagesPerSequence"/>).</summary>
    public StreamingStorage StreamingStorage { get; init; } = StreamingStorage.Paged;
    /// <summary>Storage of the key min/max summaries page selection scores: 8 (int8 with a scale per logical page and
    /// head, rounded outward; a quarter of float32's bytes, scored with byte dot products where the CPU has AVX-512
    /// VNNI), 16 (bfloat16) or 32 (float32). The needle-recall and error figures in docs/PERFORMANCE.md are the same
    /// at every width.</summary>
    public int SummaryBits { get; init; } = 8;
}
