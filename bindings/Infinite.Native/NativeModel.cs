using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace Infinite.Native;

/// <summary>
/// A Llama-family model's weights on one device (<c>inf_model</c>). Steps run over a <see cref="PagePool"/> of
/// the model's shape: one native call per step, whatever the number of layers. Thread-safe for concurrent
/// steps on different pools.
/// </summary>
public sealed class NativeModel : IDisposable
{
    private NativeModel(Device device, ModelHandle handle, NativeModelConfig config)
    {
        Device = device;
        Handle = handle;
        Config = config;
    }

    public Device Device { get; }

    /// <summary>The native handle this model owns.</summary>
    public ModelHandle Handle { get; }

    public NativeModelConfig Config { get; }

    /// <summary>Builds the model from <paramref name="tensors"/> (every tensor the config needs, no others).
    /// <paramref name="progress"/> gets (done, total) bytes of weights prepared, on this thread.</summary>
    /// <exception cref="InfiniteException">A bad config field or tensor (named in the message), or no memory.</exception>
    public static unsafe NativeModel Create(Device device, NativeModelConfig config, ReadOnlySpan<NativeTensor> tensors,
        Action<ulong, ulong>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(config);
        var native = new inf_tensor[tensors.Length];
        int nameBytes = 0;
        for (int i = 0; i < tensors.Length; i++)
        {
            if (tensors[i].Name is null)
            {
                throw new ArgumentException($"tensors[{i}] is default (no name)", nameof(tensors));
            }
            nameBytes = checked(nameBytes + Encoding.UTF8.GetByteCount(tensors[i].Name) + 1);
        }
        // One block holds every zero-terminated name for the length of the call.
        byte* names = (byte*)NativeMemory.Alloc((nuint)Math.Max(nameBytes, 1));
        var relay = progress is null ? null : new ProgressRelay(progress);
        GCHandle relayHandle = relay is null ? default : GCHandle.Alloc(relay);
        try
        {
            byte* next = names;
            for (int i = 0; i < tensors.Length; i++)
            {
                NativeTensor t = tensors[i];
                int written = Encoding.UTF8.GetBytes(t.Name, new Span<byte>(next, nameBytes - (int)(next - names)));
                next[written] = 0;
                ref inf_tensor n = ref native[i];
                n.size = (uint)sizeof(inf_tensor);
                n.type = t.Type;
                n.name = next;
                n.dims = t.Shape.Length;
                for (int d = 0; d < t.Shape.Length; d++)
                {
                    n.shape[d] = t.Shape[d];
                }
                n.data = (void*)t.Data;
                n.bytes = (ulong)t.Bytes;
                next += written + 1;
            }
            ModelHandle handle;
            fixed (inf_tensor* p = native)
            {
                handle = ModelHandle.Create(device.Handle, config.ToNative(), (nint)p, native.Length,
                    relay is null ? null : &OnProgress, relay is null ? 0 : GCHandle.ToIntPtr(relayHandle));
            }
            if (relay?.Error is { } error)
            {
                handle.Dispose();
                throw new InvalidOperationException("the load progress callback threw", error);
            }
            return new NativeModel(device, handle, config);
        }
        finally
        {
            if (relayHandle.IsAllocated)
            {
                relayHandle.Free();
            }
            NativeMemory.Free(names);
        }
    }

    /// <summary>Bytes of weights the model holds itself (converted or uploaded copies; F32 used in place is not counted).</summary>
    public unsafe long Bytes
    {
        get
        {
            using var model = new HandleLease(Handle);
            ulong bytes;
            NativeStatus.Check(NativeMethods.inf_model_bytes((inf_model*)model.Value, &bytes));
            return (long)bytes;
        }
    }

    /// <summary>Runs one dense step over <paramref name="pool"/>; <paramref name="logits"/> receives
    /// <c>[LogitTokens.Length][VocabSize]</c>.</summary>
    /// <exception cref="ArgumentException">The spans disagree in length (checked here: native code cannot see lengths).</exception>
    /// <exception cref="InfiniteException">A bad value in the plan (named in the message) or a pool of another shape.</exception>
    public unsafe void Step(PagePool pool, in NativeStepPlan plan, Span<float> logits) =>
        Run(pool, plan, logits, null);

    /// <summary>Runs one step with sparse attention (streaming heads, page selection for retrieval heads).</summary>
    public unsafe void Step(PagePool pool, in NativeStepPlan plan, in NativeSparseStep sparse, Span<float> logits)
    {
        NativeStepExchange none = default;
        RunSparse(pool, plan, sparse, none, exchanged: false, logits);
    }

    /// <summary>Runs this instance's share of a distributed step with sparse attention: streaming heads apply the Λ mask
    /// on every instance, and page selection (which needs <see cref="NativeSparseStep.SelectionStore"/> empty: a
    /// reusable selection is not supported with several instances) takes a global top-k at each sequence's home.</summary>
    /// <exception cref="ArgumentException">Spans disagree in length (checked here: native code cannot see lengths).</exception>
    /// <exception cref="PeerFailedException">A peer this step exchanges with is gone.</exception>
    /// <exception cref="CommunicationTimeoutException">A peer did not answer within the communicator's timeout.</exception>
    public unsafe void Step(PagePool pool, in NativeStepPlan plan, in NativeSparseStep sparse, in NativeStepExchange exchange,
        Span<float> logits)
        => RunSparse(pool, plan, sparse, exchange, exchanged: true, logits);

    // The sparse step as inf_sparse_step (spans pinned for the call), then a plain or a distributed step.
    private unsafe void RunSparse(PagePool pool, in NativeStepPlan plan, in NativeSparseStep sparse, in NativeStepExchange exchange,
        bool exchanged, Span<float> logits)
    {
        CheckSparse(plan, sparse);
        using var ringPool = sparse.RingPool is { } ringOwner ? new HandleLease(ringOwner.Handle) : default;
        fixed (int* streaming = sparse.StreamingHeads, store = sparse.SelectionStore, slots = sparse.SelectionSlots, reselect = sparse.Reselect)
        fixed (int* ringStarts = sparse.RingStarts, ringPages = sparse.RingPages)
        {
            inf_streaming_ring ring = new()
            {
                size = (uint)sizeof(inf_streaming_ring),
                pool = sparse.RingPool is null ? null : (inf_page_pool*)ringPool.Value,
                ring_starts = ringStarts,
                ring_pages = ringPages,
            };
            inf_sparse_step native = new()
            {
                size = (uint)sizeof(inf_sparse_step),
                streaming_heads = sparse.StreamingHeads.IsEmpty ? null : streaming,
                decode_sink_tokens = sparse.DecodeSinkTokens,
                decode_local_tokens = sparse.DecodeLocalTokens,
                prefill_sink_tokens = sparse.PrefillSinkTokens,
                prefill_local_tokens = sparse.PrefillLocalTokens,
                budget_tokens = sparse.BudgetTokens,
                per_query_head = sparse.PerQueryHead ? 1 : 0,
                selection_store = sparse.SelectionStore.IsEmpty ? null : store,
                slot_ints = sparse.SelectionStore.IsEmpty ? 0 : sparse.SlotInts,
                selection_slots = sparse.SelectionStore.IsEmpty ? null : slots,
                reselect = sparse.SelectionStore.IsEmpty ? null : reselect,
                ring = sparse.RingPool is null ? null : &ring,
            };
            if (exchanged)
            {
                RunExchange(pool, plan, exchange, logits, &native);
            }
            else
            {
                Run(pool, plan, logits, &native);
            }
        }
    }

    /// <summary>Runs this instance's share of a distributed step (DistAttention): local pages as in a dense step
    /// (with <see cref="NativeStepPlan.PagePositions"/>), remote parts and served parts exchanged per layer over
    /// <see cref="NativeStepExchange.Communicator"/>. Every instance of the group calls this for the same step id at
    /// the same time. Dense; the overload with a <see cref="NativeSparseStep"/> runs sparse attention.</summary>
    /// <exception cref="ArgumentException">Spans disagree in length (checked here: native code cannot see lengths).</exception>
    /// <exception cref="PeerFailedException">A peer this step exchanges with is gone.</exception>
    /// <exception cref="CommunicationTimeoutException">A peer did not answer within the communicator's timeout.</exception>
    public unsafe void Step(PagePool pool, in NativeStepPlan plan, in NativeStepExchange exchange, Span<float> logits) =>
        RunExchange(pool, plan, exchange, logits, null);

    private unsafe void RunExchange(PagePool pool, in NativeStepPlan plan, in NativeStepExchange exchange, Span<float> logits,
        inf_sparse_step* sparse)
    {
        if (exchange.Communicator is null)
        {
            throw new ArgumentException("the exchange has no communicator", nameof(exchange));
        }
        CheckExchange(exchange);
        using var comm = new HandleLease(exchange.Communicator);
        fixed (int* remoteSequences = exchange.RemoteSequences, remoteRanks = exchange.RemoteRanks, sendsKv = exchange.RemoteSendsKv,
               servedRanks = exchange.ServedRanks, servedQStarts = exchange.ServedQStarts, servedPositions = exchange.ServedPositions,
               servedKvLengths = exchange.ServedKvLengths, servedPageStarts = exchange.ServedPageStarts,
               servedPageIds = exchange.ServedPageIds, servedPagePositions = exchange.ServedPagePositions,
               receivesKv = exchange.ServedReceivesKv, appendPages = exchange.ServedAppendPages)
        {
            inf_step_exchange native = new()
            {
                size = (uint)sizeof(inf_step_exchange),
                comm = (inf_comm*)comm.Value,
                step_id = exchange.StepId,
                remote_parts = exchange.RemoteParts,
                remote_sequences = NonNull(remoteSequences),
                remote_ranks = NonNull(remoteRanks),
                remote_sends_kv = exchange.RemoteSendsKv.IsEmpty ? null : sendsKv,
                served_parts = exchange.ServedParts,
                served_ranks = NonNull(servedRanks),
                served_q_starts = NonNull(servedQStarts),
                served_positions = NonNull(servedPositions),
                served_kv_lengths = NonNull(servedKvLengths),
                served_page_starts = NonNull(servedPageStarts),
                served_page_ids = NonNull(servedPageIds),
                served_page_positions = NonNull(servedPagePositions),
                served_receives_kv = exchange.ServedReceivesKv.IsEmpty ? null : receivesKv,
                served_append_pages = exchange.ServedAppendPages.IsEmpty ? null : appendPages,
            };
            Run(pool, plan, logits, sparse, &native);
        }
    }

    public void Dispose() => Handle.Dispose();

    private unsafe void Run(PagePool pool, in NativeStepPlan plan, Span<float> logits, inf_sparse_step* sparse,
        inf_step_exchange* exchange = null)
    {
        ArgumentNullException.ThrowIfNull(pool);
        CheckPlan(plan, logits.Length);
        using var model = new HandleLease(Handle);
        using var pages = new HandleLease(pool.Handle);
        fixed (int* tokens = plan.TokenIds, positions = plan.Positions, qStarts = plan.QStarts, kvLengths = plan.KvLengths,
               pageStarts = plan.PageStarts, pageIds = plan.PageIds, logitTokens = plan.LogitTokens, pagePositions = plan.PagePositions)
        fixed (float* output = logits)
        {
            // With an exchange an instance may have no sequences of its own (it only serves): its empty arrays still
            // go down as valid pointers, never null, so "nothing" is not mistaken for "missing".
            bool serving = exchange is not null;
            float noLogits = 0;
            inf_step_plan native = new()
            {
                size = (uint)sizeof(inf_step_plan),
                sequences = plan.Sequences,
                tokens = plan.TokenIds.Length,
                logit_rows = plan.LogitTokens.Length,
                token_ids = serving ? NonNull(tokens) : tokens,
                positions = serving ? NonNull(positions) : positions,
                q_starts = serving ? NonNull(qStarts) : qStarts,
                kv_lengths = serving ? NonNull(kvLengths) : kvLengths,
                page_starts = serving ? NonNull(pageStarts) : pageStarts,
                page_ids = serving ? NonNull(pageIds) : pageIds,
                logit_tokens = serving ? NonNull(logitTokens) : logitTokens,
                sparse = sparse,
                page_positions = plan.PagePositions.IsEmpty ? null : pagePositions,
                exchange = exchange,
            };
            NativeStatus.Check(NativeMethods.inf_model_step((inf_model*)model.Value, (inf_page_pool*)pages.Value, &native,
                output is null && serving ? &noLogits : output));
        }
    }

    /// <summary>A pinned zero, standing in for an empty array (q_starts of no sequences is [0]).</summary>
    private static readonly int[] Zero = GC.AllocateArray<int>(1, pinned: true);

    private static unsafe int* NonNull(int* p) =>
        p is not null ? p : (int*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(Zero));

    // Native code sizes every array from counts and offsets; these checks keep it inside the spans.
    private void CheckPlan(in NativeStepPlan plan, int logitsLength)
    {
        int sequences = plan.Sequences;
        if (plan.Positions.Length != plan.TokenIds.Length)
        {
            throw new ArgumentException($"Positions has {plan.Positions.Length} entries but TokenIds has {plan.TokenIds.Length}", nameof(plan));
        }
        CheckOffsets(plan.QStarts, sequences, plan.TokenIds.Length, "QStarts", "TokenIds");
        CheckOffsets(plan.PageStarts, sequences, plan.PageIds.Length, "PageStarts", "PageIds");
        if (!plan.PagePositions.IsEmpty && plan.PagePositions.Length != plan.PageIds.Length)
        {
            throw new ArgumentException($"PagePositions has {plan.PagePositions.Length} entries but PageIds has {plan.PageIds.Length}", nameof(plan));
        }
        long needed = (long)plan.LogitTokens.Length * Config.VocabSize;
        if (logitsLength < needed)
        {
            throw new ArgumentException($"logits has {logitsLength} floats but {plan.LogitTokens.Length} rows of vocab {Config.VocabSize} need {needed}", "logits");
        }
    }

    private static void CheckExchange(in NativeStepExchange x)
    {
        int remote = x.RemoteParts;
        if (x.RemoteRanks.Length != remote || (x.RemoteSendsKv.Length != remote && !x.RemoteSendsKv.IsEmpty))
        {
            throw new ArgumentException($"RemoteRanks ({x.RemoteRanks.Length}) and RemoteSendsKv ({x.RemoteSendsKv.Length}, or none) must have one entry per remote part ({remote})", "exchange");
        }
        int served = x.ServedParts;
        if (x.ServedRanks.Length != served || (x.ServedReceivesKv.Length != served && !x.ServedReceivesKv.IsEmpty))
        {
            throw new ArgumentException($"ServedRanks ({x.ServedRanks.Length}) and ServedReceivesKv ({x.ServedReceivesKv.Length}, or none) must have one entry per served part ({served})", "exchange");
        }
        if (served == 0 && x.ServedQStarts.Length <= 1 && x.ServedPageStarts.Length <= 1)
        {
            return;
        }
        CheckExchangeOffsets(x.ServedQStarts, served, x.ServedPositions.Length, "ServedQStarts", "ServedPositions");
        CheckExchangeOffsets(x.ServedPageStarts, served, x.ServedPageIds.Length, "ServedPageStarts", "ServedPageIds");
        if (x.ServedPagePositions.Length != x.ServedPageIds.Length)
        {
            throw new ArgumentException($"ServedPagePositions has {x.ServedPagePositions.Length} entries but ServedPageIds has {x.ServedPageIds.Length}", "exchange");
        }
        bool receives = false;
        foreach (int flag in x.ServedReceivesKv)
        {
            receives |= flag != 0;
        }
        int rows = x.ServedQStarts[served];
        if (receives ? x.ServedAppendPages.Length != rows : !x.ServedAppendPages.IsEmpty && x.ServedAppendPages.Length != rows)
        {
            throw new ArgumentException($"ServedAppendPages has {x.ServedAppendPages.Length} entries; it needs one per served row ({rows}) when a part receives K and V, else none", "exchange");
        }
    }

    private static void CheckExchangeOffsets(ReadOnlySpan<int> offsets, int parts, int total, string name, string target)
    {
        if (offsets.Length != parts + 1)
        {
            throw new ArgumentException($"{name} has {offsets.Length} entries, expected served parts + 1 = {parts + 1}", "exchange");
        }
        for (int i = 0; i < offsets.Length; i++)
        {
            if ((uint)offsets[i] > (uint)total || (i > 0 && offsets[i] < offsets[i - 1]))
            {
                throw new ArgumentException($"{name}[{i}] = {offsets[i]} is outside [{(i > 0 ? offsets[i - 1] : 0)}, {total}] ({target} has {total} entries)", "exchange");
            }
        }
    }

    private static void CheckOffsets(ReadOnlySpan<int> offsets, int sequences, int total, string name, string target)
    {
        if (offsets.Length != sequences + 1)
        {
            throw new ArgumentException($"{name} has {offsets.Length} entries, expected sequences + 1 = {sequences + 1}", "plan");
        }
        for (int i = 0; i < offsets.Length; i++)
        {
            if ((uint)offsets[i] > (uint)total)
            {
                throw new ArgumentException($"{name}[{i}] = {offsets[i]} is outside [0, {total}] ({target} has {total} entries)", "plan");
            }
        }
    }

    private void CheckSparse(in NativeStepPlan plan, in NativeSparseStep sparse)
    {
        long heads = (long)Config.Layers * Config.KvHeads;
        if (!sparse.StreamingHeads.IsEmpty && sparse.StreamingHeads.Length != heads)
        {
            throw new ArgumentException($"StreamingHeads has {sparse.StreamingHeads.Length} flags, expected layers * kv_heads = {heads}", nameof(sparse));
        }
        if (sparse.RingPool is not null)
        {
            // Native code reads RingPages up to RingStarts[sequences]; the rest of the ring is checked there.
            if (sparse.RingStarts.Length != plan.Sequences + 1)
            {
                throw new ArgumentException($"RingStarts has {sparse.RingStarts.Length} entries, expected sequences + 1 = {plan.Sequences + 1}", nameof(sparse));
            }
            if (sparse.RingStarts[plan.Sequences] > sparse.RingPages.Length || sparse.RingStarts[plan.Sequences] < 0)
            {
                throw new ArgumentException($"RingStarts[{plan.Sequences}] = {sparse.RingStarts[plan.Sequences]} is outside RingPages (length {sparse.RingPages.Length})", nameof(sparse));
            }
        }
        if (sparse.SelectionStore.IsEmpty)
        {
            return;
        }
        if (sparse.SlotInts <= 0)
        {
            throw new ArgumentException($"SlotInts ({sparse.SlotInts}) must be positive with a selection store", nameof(sparse));
        }
        if (sparse.SelectionSlots.Length != plan.Sequences || sparse.Reselect.Length != plan.Sequences)
        {
            throw new ArgumentException($"SelectionSlots ({sparse.SelectionSlots.Length}) and Reselect ({sparse.Reselect.Length}) must have one entry per sequence ({plan.Sequences})", nameof(sparse));
        }
        long slots = sparse.SelectionStore.Length / sparse.SlotInts;
        for (int s = 0; s < sparse.SelectionSlots.Length; s++)
        {
            if (sparse.SelectionSlots[s] >= slots)
            {
                throw new ArgumentException($"SelectionSlots[{s}] = {sparse.SelectionSlots[s]} is beyond the store's {slots} slots of {sparse.SlotInts} ints", nameof(sparse));
            }
        }
    }

    // Runs on the loading thread inside inf_model_create. An exception must not unwind into native code, so
    // it is kept and rethrown once the call returns.
    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static unsafe void OnProgress(void* userData, ulong done, ulong total)
    {
        if (GCHandle.FromIntPtr((nint)userData).Target is not ProgressRelay relay || relay.Error is not null)
        {
            return;
        }
        try
        {
            relay.Callback(done, total);
        }
        catch (Exception e)
        {
            relay.Error = e;
        }
    }

    private sealed class ProgressRelay(Action<ulong, ulong> callback)
    {
        public Action<ulong, ulong> Callback { get; } = callback;

        public Exception? Error { get; set; }
    }
}
