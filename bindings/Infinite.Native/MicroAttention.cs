namespace Infinite.Native;

/// <summary>
/// Attention over lists of KV pages, returning o and its log-sum-exp (natural log) so partial
/// results from different page sets, or different instances, merge exactly. Dense attention, a
/// streaming head, a retrieval head and a remote part of a distributed request are all this call.
/// </summary>
public static class MicroAttention
{
    /// <summary>Runs one layer's attention for <paramref name="batch"/>. <paramref name="q"/> holds
    /// <c>[rows][q_heads][head_dim]</c> of the batch's query type; <paramref name="o"/> receives float32
    /// <c>[rows][q_heads][head_dim]</c> and <paramref name="lse"/> float32 <c>[rows][q_heads]</c>.</summary>
    public static unsafe void Run(PagePool pool, int layer, AttentionBatch batch, DeviceBuffer q, DeviceBuffer o, DeviceBuffer lse)
    {
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(q);
        ArgumentNullException.ThrowIfNull(o);
        ArgumentNullException.ThrowIfNull(lse);
        AttentionBatch.Arrays a = batch.Materialize(pool.Config.KvHeads, pool.Config.PageSize);
        using var poolLease = new HandleLease(pool.Handle);
        using var qLease = new HandleLease(q.Handle);
        using var oLease = new HandleLease(o.Handle);
        using var lseLease = new HandleLease(lse.Handle);
        fixed (int* qStarts = a.QStarts, qPositions = a.QPositions, kvLengths = a.KvLengths, pageStarts = a.PageStarts,
               pageIds = a.PageIds, pagePositions = a.PagePositions, headStarts = a.HeadPageStarts, headIndices = a.HeadPageIndices,
               streaming = batch.StreamingHeads)
        {
            var native = new inf_attention_batch
            {
                size = (uint)sizeof(inf_attention_batch),
                sequences = batch.Sequences,
                q_heads = batch.QueryHeads,
                q_dtype = batch.QueryType,
                scale = batch.Scale,
                q_starts = qStarts,
                q_positions = qPositions,
                kv_lengths = kvLengths,
                page_starts = pageStarts,
                page_ids = pageIds,
                page_positions = pagePositions,
                head_page_starts = headStarts,
                head_page_indices = headIndices,
                head_lists_per_query_head = batch.PerQueryHeadLists ? 1 : 0,
                streaming_heads = streaming,
                sink_tokens = batch.SinkTokens,
                local_tokens = batch.LocalTokens,
            };
            NativeStatus.Check(NativeMethods.inf_attention_run((inf_page_pool*)poolLease.Value, layer, &native,
                (inf_buffer*)qLease.Value, (inf_buffer*)oLease.Value, (inf_buffer*)lseLease.Value));
        }
    }

    /// <summary>Merges partial results (each o float32 <c>[rows][headDim]</c>, lse float32 <c>[rows]</c>)
    /// into <paramref name="o"/> and <paramref name="lse"/>, which may be the first part's buffers.</summary>
    public static unsafe void Merge(IReadOnlyList<(DeviceBuffer O, DeviceBuffer Lse)> parts, long rows, int headDim, DeviceBuffer o, DeviceBuffer lse)
    {
        ArgumentNullException.ThrowIfNull(parts);
        ArgumentNullException.ThrowIfNull(o);
        ArgumentNullException.ThrowIfNull(lse);
        if (parts.Count == 0)
        {
            throw new ArgumentException("at least one part is needed", nameof(parts));
        }
        var handles = new List<System.Runtime.InteropServices.SafeHandle>(parts.Count * 2 + 2);
        var added = new bool[parts.Count * 2 + 2];
        var oPointers = new nint[parts.Count];
        var lsePointers = new nint[parts.Count];
        try
        {
            for (int i = 0; i < parts.Count; i++)
            {
                handles.Add(parts[i].O.Handle);
                handles.Add(parts[i].Lse.Handle);
            }
            handles.Add(o.Handle);
            handles.Add(lse.Handle);
            for (int i = 0; i < handles.Count; i++)
            {
                handles[i].DangerousAddRef(ref added[i]);
            }
            for (int i = 0; i < parts.Count; i++)
            {
                oPointers[i] = handles[2 * i].DangerousGetHandle();
                lsePointers[i] = handles[2 * i + 1].DangerousGetHandle();
            }
            fixed (nint* op = oPointers, lp = lsePointers)
            {
                NativeStatus.Check(NativeMethods.inf_attention_merge(parts.Count, (inf_buffer**)op, (inf_buffer**)lp, rows, headDim,
                    (inf_buffer*)o.Handle.DangerousGetHandle(), (inf_buffer*)lse.Handle.DangerousGetHandle()));
            }
        }
        finally
        {
            for (int i = 0; i < handles.Count; i++)
            {
                if (added[i])
                {
                    handles[i].DangerousRelease();
                }
            }
        }
    }
}
