using Infinite.Engine;
using Infinite.Models;
using Infinite.Native;

namespace Infinite.Runtime;

/// <summary>
/// Runs steps on the native core: one <see cref="NativeModel"/>, one <see cref="PagePool"/> and a pinned store
/// of reusable sparse selections on one device (with <see cref="NativeExecutorOptions.RingStreamingHeads"/>, the pool
/// keeps only the retrieval heads and <see cref="RingPool"/> one ring of streaming heads per selection slot). Each <see cref="Step"/> is one native call for all layers.
/// The weight source must outlive the executor unless <see cref="NativeExecutorOptions.OwnsWeights"/> is set:
/// F32 weights are read in place, not copied. Not thread-safe: one executor thread drives it.
/// </summary>
public sealed class NativeExecutor : IModelExecutor
{
    private readonly IWeightSource _weights;
    private readonly bool _ownsWeights;
    private readonly bool _ownsDevice;
    private readonly int[] _selectionStore;
    // Reused across steps: bool flags of the plan as the int flags the C ABI takes.
    private int[] _streaming = [];
    private int[] _reselect = [];
    private int[] _ringStarts = [];
    private int[] _ringPages = [];
    private bool _disposed;

    /// <summary>Loads <paramref name="weights"/> onto <paramref name="device"/> (the CPU when null, then owned)
    /// and reserves the KV cache.</summary>
    /// <exception cref="InfiniteException">The native core rejected a tensor or the pool (the message names it).</exception>
    public NativeExecutor(IWeightSource weights, NativeExecutorOptions? options = null, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(weights);
        options ??= new NativeExecutorOptions();
        _weights = weights;
        _ownsWeights = options.OwnsWeights;
        Config = weights.Config ?? throw new ArgumentException("the weight source has no config", nameof(weights));
        if (options.PageCount is not null && options.KvMemoryBytes is not null)
        {
            throw new ArgumentException("set PageCount or KvMemoryBytes, not both", nameof(options));
        }
        if (options.SelectionSlots < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.SelectionSlots, "SelectionSlots must be >= 0");
        }
        CheckRing(Config, options);
        _ownsDevice = device is null;
        Device = device ?? Device.Cpu();
        try
        {
            Model = NativeModel.Create(Device, ToNative(Config), Tensors(weights), Progress(options.Progress));
            if (options.RingStreamingHeads is { } ringHeads)
            {
                RingStreamingHeads = [.. ringHeads];
                RingPagesPerSequence = options.RingPagesPerSequence;
                RingPool = PagePool.Create(Device, RingShape(Config, options, options.SelectionSlots * options.RingPagesPerSequence));
            }
            Pool = CreatePool(Device, Config, options, RingPool?.Bytes ?? 0);
            PageSize = Pool.Config.PageSize;
            PageCount = Pool.Config.Pages;
            SelectionSlots = options.SelectionSlots;
            SlotInts = (long)Config.Layers * Config.QHeads * (1 + Math.Max(1, options.MaxBudgetTokens / PageSize));
            long storeInts = SelectionSlots * SlotInts;
            if (storeInts > Array.MaxLength)
            {
                throw new ArgumentOutOfRangeException(nameof(options), $"{SelectionSlots} selection slots of {SlotInts} ints exceed one array; use fewer slots or a smaller MaxBudgetTokens");
            }
            _selectionStore = GC.AllocateArray<int>((int)storeInts, pinned: true);
        }
        catch
        {
            Pool?.Dispose();
            RingPool?.Dispose();
            Model?.Dispose();
            if (_ownsDevice)
            {
                Device.Dispose();
            }
            throw;
        }
    }

    public LlamaConfig Config { get; }

    public int PageSize { get; }

    public int PageCount { get; }

    public int SelectionSlots { get; }

    /// <summary>Ints of one selection slot: layers * q_heads * (1 + max budget pages).</summary>
    public long SlotInts { get; }

    public Device Device { get; }

    public NativeModel Model { get; }

    public PagePool Pool { get; }

    /// <summary>The streaming heads' rings (<see cref="NativeExecutorOptions.RingStreamingHeads"/>), or null; ring k is
    /// pages <c>k * RingPagesPerSequence ..</c>, held by the request of selection slot k.</summary>
    public PagePool? RingPool { get; }

    public int RingPagesPerSequence { get; }

    public IReadOnlyList<bool>? RingStreamingHeads { get; }

    public void Step(StepPlan plan, Span<float> logits)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        StepPlanShape.Check(plan, logits.Length, Config.VocabSize);
        var native = new NativeStepPlan
        {
            TokenIds = plan.TokenIds,
            Positions = plan.Positions,
            QStarts = plan.QStarts,
            KvLengths = plan.KvLengths,
            PageStarts = plan.PageStarts,
            PageIds = plan.PageIds,
            LogitTokens = plan.LogitTokens,
        };
        if (plan.Sparse is not { } sparse)
        {
            Model.Step(Pool, native, logits);
            return;
        }
        ReadOnlySpan<int> streaming = sparse.StreamingHeads is null ? default : Flags(sparse.StreamingHeads, ref _streaming);
        Span<int> store = default;
        ReadOnlySpan<int> reselect = default;
        if (sparse.SelectionSlots is { } slots)
        {
            CheckSlots(slots);
            store = _selectionStore;
            reselect = Flags(sparse.Reselect!, ref _reselect);
        }
        if (RingPool is not null)
        {
            RingOf(sparse);
        }
        var step = new NativeSparseStep
        {
            StreamingHeads = streaming,
            DecodeSinkTokens = sparse.DecodeSinkTokens,
            DecodeLocalTokens = sparse.DecodeLocalTokens,
            PrefillSinkTokens = sparse.PrefillSinkTokens,
            PrefillLocalTokens = sparse.PrefillLocalTokens,
            BudgetTokens = sparse.BudgetTokens,
            PerQueryHead = sparse.PerQueryHead,
            SelectionStore = store,
            SlotInts = SlotInts,
            SelectionSlots = sparse.SelectionSlots,
            Reselect = reselect,
            RingPool = RingPool,
            RingStarts = RingPool is null ? default : _ringStarts.AsSpan(0, plan.SequenceCount + 1),
            RingPages = RingPool is null ? default : _ringPages.AsSpan(0, plan.SequenceCount * RingPagesPerSequence),
        };
        Model.Step(Pool, native, step, logits);
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        Pool.Dispose();
        RingPool?.Dispose();
        Model.Dispose();
        if (_ownsDevice)
        {
            Device.Dispose();
        }
        if (_ownsWeights && _weights is IDisposable disposable)
        {
            disposable.Dispose();
        }
    }

    internal static NativeModelConfig ToNative(LlamaConfig c) => new()
    {
        VocabSize = c.VocabSize,
        Dim = c.Dim,
        Layers = c.Layers,
        QHeads = c.QHeads,
        KvHeads = c.KvHeads,
        HeadDim = c.HeadDim,
        FfnDim = c.FfnDim,
        TiedEmbeddings = c.TiedEmbeddings,
        NormEps = c.NormEps,
        RopeTheta = c.RopeTheta,
        RopeStyle = (inf_rope_style)(int)c.RopeStyle,
        RopeScaling = (inf_rope_scaling)(int)c.RopeScaling.Kind,
        RopeFactor = c.RopeScaling.Factor,
        RopeLowFreqFactor = c.RopeScaling.LowFreqFactor,
        RopeHighFreqFactor = c.RopeScaling.HighFreqFactor,
        RopeOriginalContext = c.RopeScaling.OriginalContext,
    };

    internal static NativeTensor[] Tensors(IWeightSource weights) =>
        weights.Tensors.Select(t => new NativeTensor(t.Name, (inf_tensor_type)(int)t.Type, t.Shape, weights.GetPointer(t), t.Bytes)).ToArray();

    internal static Action<ulong, ulong>? Progress(Action<LoadProgress>? progress) =>
        progress is null ? null : (done, total) => progress(new LoadProgress("weights", (long)done, (long)total));

    /// <param name="reservedBytes">Bytes of <see cref="NativeExecutorOptions.KvMemoryBytes"/> already taken (the rings).</param>
    internal static PagePool CreatePool(Device device, LlamaConfig c, NativeExecutorOptions options, long reservedBytes = 0)
    {
        // With rings the pool keeps only the retrieval heads of each layer.
        int[]? heads = options.RingStreamingHeads is { } flags ? StreamingRing.HeadsPerLayer(flags, c.Layers, c.KvHeads, streaming: false) : null;
        PagePoolConfig Shape(int pages) =>
            new(c.Layers, c.KvHeads, c.HeadDim, options.PageSize, pages, options.KvType, options.LogicalPageSize) { LayerKvHeads = heads, SummaryBits = options.SummaryBits };
        long? budgetLeft = options.KvMemoryBytes - reservedBytes;

        if (options.PageCount is { } count)
        {
            return PagePool.Create(device, Shape(count));
        }
        if (budgetLeft is not { } budget)
        {
            return PagePool.Create(device, Shape(256));
        }
        // The native pool is the authority on its own footprint: measure one page and two, and fit the budget.
        long one, two;
        using (PagePool probe = PagePool.Create(device, Shape(1)))
        {
            one = probe.Bytes;
        }
        using (PagePool probe = PagePool.Create(device, Shape(2)))
        {
            two = probe.Bytes;
        }
        long perPage = two - one, fixedBytes = one - perPage;
        long pages = (budget - fixedBytes) / perPage;
        if (pages < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.KvMemoryBytes, reservedBytes > 0
                ? $"KvMemoryBytes ({options.KvMemoryBytes}) holds no page beside the streaming heads' rings ({reservedBytes} bytes): one page takes {perPage + fixedBytes} bytes"
                : $"KvMemoryBytes ({budget}) holds no page: one page takes {perPage + fixedBytes} bytes");
        }
        return PagePool.Create(device, Shape((int)Math.Min(pages, int.MaxValue)));
    }

    // The rings' pool: the streaming heads of each layer, no summaries (a streaming head never selects pages).
    private static PagePoolConfig RingShape(LlamaConfig c, NativeExecutorOptions options, int pages) =>
        new(c.Layers, c.KvHeads, c.HeadDim, options.PageSize, pages, options.KvType)
        {
            LayerKvHeads = StreamingRing.HeadsPerLayer(options.RingStreamingHeads!, c.Layers, c.KvHeads, streaming: true),
        };

    private static void CheckRing(LlamaConfig c, NativeExecutorOptions options)
    {
        if (options.RingStreamingHeads is not { } flags)
        {
            return;
        }
        if (flags.Count != c.Layers * c.KvHeads)
        {
            throw new ArgumentException($"RingStreamingHeads has {flags.Count} flags but the model has {c.Layers * c.KvHeads} (layers {c.Layers} x KV heads {c.KvHeads})", nameof(options));
        }
        if (!flags.Contains(true))
        {
            throw new ArgumentException("RingStreamingHeads marks no streaming head: a ring would hold nothing (keep streaming heads paged)", nameof(options));
        }
        if (options.RingPagesPerSequence < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.RingPagesPerSequence, "RingPagesPerSequence must be >= 1 with RingStreamingHeads");
        }
        if (options.SelectionSlots < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.SelectionSlots, "RingStreamingHeads needs SelectionSlots >= 1: a request's ring is its slot's");
        }
    }

    // Ring k belongs to selection slot k: the plan's slots give each sequence its ring.
    private void RingOf(SparseStep sparse)
    {
        if (sparse.SelectionSlots is not { } slots)
        {
            throw new ArgumentException("the executor keeps streaming heads in rings, one per selection slot: the plan must give Sparse.SelectionSlots", "plan");
        }
        int r = RingPagesPerSequence;
        if (_ringStarts.Length < slots.Length + 1)
        {
            _ringStarts = new int[slots.Length + 1];
        }
        if (_ringPages.Length < slots.Length * r)
        {
            _ringPages = new int[slots.Length * r];
        }
        for (int s = 0; s < slots.Length; s++)
        {
            _ringStarts[s] = s * r;
            for (int i = 0; i < r; i++)
            {
                _ringPages[s * r + i] = slots[s] * r + i;
            }
        }
        _ringStarts[slots.Length] = slots.Length * r;
    }

    private void CheckSlots(int[] slots)
    {
        if (SelectionSlots == 0)
        {
            throw new ArgumentException("the plan uses selection slots but this executor has none (NativeExecutorOptions.SelectionSlots is 0)", "plan");
        }
        for (int s = 0; s < slots.Length; s++)
        {
            if (slots[s] >= SelectionSlots)
            {
                throw new ArgumentException($"Sparse.SelectionSlots[{s}] = {slots[s]} is outside [0, {SelectionSlots})", "plan");
            }
        }
    }

    private static ReadOnlySpan<int> Flags(bool[] flags, ref int[] buffer)
    {
        if (buffer.Length < flags.Length)
        {
            buffer = new int[flags.Length];
        }
        for (int i = 0; i < flags.Length; i++)
        {
            buffer[i] = flags[i] ? 1 : 0;
        }
        return buffer.AsSpan(0, flags.Length);
    }
}
