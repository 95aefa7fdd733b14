using Infinite.Models;
using Infinite.Native;

namespace Infinite.Runtime;

/// <summary>How a <see cref="NativeExecutor"/> sizes its KV cache and sparse selection store.</summary>
public sealed record NativeExecutorOptions
{
    /// <summary>Storage type of the KV cache.</summary>
    public DataType KvType { get; init; } = DataType.F32;

    /// <summary>Tokens per KV page: a power of two from 16 to 256.</summary>
    public int PageSize { get; init; } = 64;

    /// <summary>Pages in the KV cache; null: as many as <see cref="KvMemoryBytes"/> holds. Set one of the two at most.</summary>
    public int? PageCount { get; init; }

    /// <summary>Bytes of device memory for the KV cache when <see cref="PageCount"/> is null; null: 256 pages.</summary>
    public long? KvMemoryBytes { get; init; }

    /// <summary>Tokens per page-summary sub-page (sparse page selection); 0: no summaries (no selection).</summary>
    public int LogicalPageSize { get; init; } = 16;

    /// <summary>Storage of the page summaries: 32 (float32), 16 (bfloat16) or 8 (int8, rounded outward).</summary>
    public int SummaryBits { get; init; } = 32;

    /// <summary>Slots of reusable page selections (one per running request); 0: none.</summary>
    public int SelectionSlots { get; init; }

    /// <summary>The largest <see cref="Engine.SparseStep.BudgetTokens"/> a step may use with selection slots: it sizes
    /// each slot (layers * q_heads * (1 + budget / page size) ints, as the native step requires).</summary>
    public int MaxBudgetTokens { get; init; } = 4096;

    /// <summary>Streaming heads in a ring (<see cref="Engine.StreamingStorage.Ring"/>): their [layers * kvHeads] flags.
    /// The KV cache is then two pools: the retrieval heads' pages (<see cref="PageCount"/> of them) and one ring of
    /// <see cref="RingPagesPerSequence"/> pages per selection slot; <see cref="KvMemoryBytes"/> covers both. Null: one
    /// pool of every head.</summary>
    public IReadOnlyList<bool>? RingStreamingHeads { get; init; }
    /// <summary>Pages of one ring (see <see cref="Engine.StreamingRing.PagesPerSequence"/>); with
    /// <see cref="RingStreamingHeads"/> only.</summary>
    public int RingPagesPerSequence { get; init; }
    /// <summary>The executor disposes the weight source (when it is <see cref="IDisposable"/>) on its own disposal.
    /// Otherwise the caller keeps it alive until the executor is disposed: F32 weights are used in place.</summary>
    public bool OwnsWeights { get; init; }

    /// <summary>Receives load progress (bytes of weights prepared) on the loading thread.</summary>
    public Action<LoadProgress>? Progress { get; init; }
}
