namespace Infinite.Native;

/// <summary>
/// Query-aware page selection for retrieval heads (LServe): scores every page of a sequence from its
/// key min/max summary and keeps the best pages within a token budget, the newest page always among them.
/// </summary>
public static class PageSelector
{
    /// <summary>Selects pages of <paramref name="layer"/> for every sequence of <paramref name="batch"/>,
    /// scoring with each sequence's last query row of <paramref name="q"/>.</summary>
    public static unsafe PageSelection Select(PagePool pool, int layer, AttentionBatch batch, DeviceBuffer q, int tokenBudget,
        SelectionGranularity granularity = SelectionGranularity.PerKvHead)
    {
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(q);
        AttentionBatch.Arrays a = batch.Materialize(pool.Config.KvHeads, pool.Config.PageSize);
        bool perQueryHead = granularity == SelectionGranularity.PerQueryHead;
        int lists = perQueryHead ? batch.QueryHeads : pool.Config.KvHeads;
        int budgetPages = Math.Max(1, tokenBudget / pool.Config.PageSize);
        int[] qRows = new int[batch.Sequences];
        long capacity = 0;
        for (int s = 0; s < batch.Sequences; s++)
        {
            qRows[s] = Math.Max(a.QStarts[s], a.QStarts[s + 1] - 1);
            capacity += (long)lists * Math.Min(budgetPages, a.PageStarts[s + 1] - a.PageStarts[s]);
        }
        var starts = new int[batch.Sequences * lists + 1];
        var indices = new int[Math.Max(capacity, 1)];
        using var poolLease = new HandleLease(pool.Handle);
        using var qLease = new HandleLease(q.Handle);
        fixed (int* rows = qRows, kvLengths = a.KvLengths, pageStarts = a.PageStarts, pageIds = a.PageIds,
               pagePositions = a.PagePositions, outStarts = starts, outIndices = indices)
        {
            var selection = new inf_page_selection
            {
                size = (uint)sizeof(inf_page_selection),
                sequences = batch.Sequences,
                q_heads = batch.QueryHeads,
                q_dtype = batch.QueryType,
                budget_tokens = tokenBudget,
                per_query_head = perQueryHead ? 1 : 0,
                q_rows = rows,
                kv_lengths = kvLengths,
                page_starts = pageStarts,
                page_ids = pageIds,
                page_positions = pagePositions,
            };
            NativeStatus.Check(NativeMethods.inf_page_select((inf_page_pool*)poolLease.Value, layer, &selection,
                (inf_buffer*)qLease.Value, outStarts, outIndices, indices.Length));
        }
        return new PageSelection(batch.Sequences, lists, perQueryHead, starts, indices);
    }
}
