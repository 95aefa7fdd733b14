namespace Infinite.Native;

/// <summary>
/// Sparse attention for one step (mirrors <c>inf_sparse_step</c>). An empty <see cref="StreamingHeads"/> means
/// no streaming heads; an empty <see cref="SelectionStore"/> means select every step (no reuse).
/// </summary>
public readonly ref struct NativeSparseStep
{
    /// <summary>[layers * kv_heads] flags, 1 = streaming head; or empty.</summary>
    public ReadOnlySpan<int> StreamingHeads { get; init; }
    public int DecodeSinkTokens { get; init; }
    public int DecodeLocalTokens { get; init; }
    public int PrefillSinkTokens { get; init; }
    public int PrefillLocalTokens { get; init; }
    /// <summary>0: dense retrieval heads.</summary>
    public int BudgetTokens { get; init; }
    public bool PerQueryHead { get; init; }
    /// <summary>Selections of all slots, <see cref="SlotInts"/> ints each; read and written by the step.</summary>
    public Span<int> SelectionStore { get; init; }
    public long SlotInts { get; init; }
    /// <summary>[sequences]: the slot of each sequence.</summary>
    public ReadOnlySpan<int> SelectionSlots { get; init; }
    /// <summary>[sequences]: 1 recomputes the sequence's selection this step, 0 reuses the stored one.</summary>
    public ReadOnlySpan<int> Reselect { get; init; }
    /// <summary>Streaming heads in a ring of pages per sequence (<c>inf_streaming_ring</c>), or null: then the
    /// step's pool holds only the retrieval heads and this pool only the streaming heads (their
    /// <see cref="PagePoolConfig.LayerKvHeads"/>).</summary>
    public PagePool? RingPool { get; init; }
    /// <summary>[sequences + 1] offsets into <see cref="RingPages"/>: sequence s owns ring entries
    /// RingPages[RingStarts[s] .. RingStarts[s+1]).</summary>
    public ReadOnlySpan<int> RingStarts { get; init; }
    public ReadOnlySpan<int> RingPages { get; init; }
}
