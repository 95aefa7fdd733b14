namespace Infinite.Engine;

/// <summary>
/// One forward step for a batch of sequences (mirrors <c>inf_step_plan</c>): prefill chunks and decodes mixed.
/// Sequence s feeds tokens <c>QStarts[s] .. QStarts[s+1]-1</c> at consecutive positions ending at
/// <c>KvLengths[s] - 1</c>; its page table is <c>PageIds[PageStarts[s] .. PageStarts[s+1]-1]</c> (entry j holds
/// positions <c>j * pageSize ..</c>). Logits come back for the tokens listed in <see cref="LogitTokens"/>.
/// </summary>
public sealed class StepPlan
{
    public required int[] TokenIds { get; init; }
    public required int[] Positions { get; init; }
    /// <summary>[sequences + 1].</summary>
    public required int[] QStarts { get; init; }
    /// <summary>[sequences]: keys each sequence attends over, this step's tokens included.</summary>
    public required int[] KvLengths { get; init; }
    /// <summary>[sequences + 1].</summary>
    public required int[] PageStarts { get; init; }
    public required int[] PageIds { get; init; }
    /// <summary>Indices into this step's tokens whose logits are returned, in order.</summary>
    public required int[] LogitTokens { get; init; }
    /// <summary>Null: dense attention.</summary>
    public SparseStep? Sparse { get; init; }
    /// <summary>[sequences]: the instance that runs each sequence's non-attention layers (its home), for executors
    /// with several instances; null: one instance. Page ids are then global: instance i's local page p is
    /// <c>i * PagesPerInstance + p</c> (see <see cref="IModelExecutor.PagesPerInstance"/>).</summary>
    public int[]? Homes { get; init; }

    public int SequenceCount => KvLengths.Length;
    public int TokenCount => TokenIds.Length;
}

/// <summary>
/// Sparse attention for one step (mirrors <c>inf_sparse_step</c>). Selections of retrieval heads are kept per
/// slot by the executor; <see cref="Reselect"/>[s] recomputes sequence s's selection this step (the engine sets
/// it every R decode steps), otherwise the slot's stored selection is reused.
/// </summary>
public sealed class SparseStep
{
    /// <summary>[layers * kvHeads] flags (streaming head = true), or null for none.</summary>
    public bool[]? StreamingHeads { get; init; }
    public int DecodeSinkTokens { get; init; } = 128;
    public int DecodeLocalTokens { get; init; } = 256;
    public int PrefillSinkTokens { get; init; } = 128;
    public int PrefillLocalTokens { get; init; } = 1024;
    /// <summary>Token budget of retrieval heads at decode; 0 = dense retrieval heads.</summary>
    public int BudgetTokens { get; init; } = 4096;
    public bool PerQueryHead { get; init; }
    /// <summary>[sequences]: selection slot of each sequence (the engine gives each running request one).</summary>
    public int[]? SelectionSlots { get; init; }
    /// <summary>[sequences].</summary>
    public bool[]? Reselect { get; init; }
}
