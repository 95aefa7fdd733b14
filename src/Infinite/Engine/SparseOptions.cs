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

}
