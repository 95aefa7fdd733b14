namespace Infinite.Native.Tests;

public sealed class SparseAttentionTests
{
    private static (float[] O, float[] Lse) Run(PagedKvFixture kv, AttentionBatch batch, float[] q)
    {
        int rows = batch.QueryRows, heads = batch.QueryHeads, dim = kv.Config.HeadDim;
        using var qb = kv.Device.Allocate<float>(q.Length);
        using var ob = kv.Device.Allocate<float>((long)rows * heads * dim);
        using var lb = kv.Device.Allocate<float>((long)rows * heads);
        qb.Write<float>(q);
        ob.Fill(float.NaN);
        lb.Fill(float.NaN);
        MicroAttention.Run(kv.Pool, 0, batch, qb, ob, lb);
        return (ob.ToArray<float>(), lb.ToArray<float>());
    }

    private static void AssertClose(double[] expected, ReadOnlySpan<float> actual, string what)
    {
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-5 * (1 + Math.Abs(expected[i])), $"{what}[{i}]: expected {expected[i]}, got {actual[i]}");
        }
    }

    [Fact]
    public void Streaming_heads_see_exactly_the_sink_and_local_keys()
    {
        const int kvHeads = 2, qHeads = 4, dim = 64, length = 300, sink = 32, local = 64;
        using var kv = new PagedKvFixture(new PagePoolConfig(1, kvHeads, dim, 16, 32), seed: 23);
        int[] table = kv.AddSequence(length);
        int[] positions = [250, 280, 299]; // a short prefill chunk: the band moves with each row
        var batch = new AttentionBatch(qHeads);
        batch.AddSequence(positions, length, table);
        batch.SetStreamingHeads([0, 1], sink, local);
        float[] q = kv.RandomFloats(positions.Length * qHeads * dim);

        var (o, lse) = Run(kv, batch, q);

        for (int r = 0; r < positions.Length; r++)
        {
            int p = positions[r];
            var (eo, el) = AttentionReference.Attend(q[(r * qHeads * dim)..((r + 1) * qHeads * dim)], qHeads, kvHeads, dim,
                1 / Math.Sqrt(dim), p, length,
                h => h == 1 ? kv.Keys(table, h).Where(k => k.Position < sink || k.Position > p - local) : kv.Keys(table, h));
            AssertClose(eo, o.AsSpan(r * qHeads * dim, qHeads * dim), $"o row {r}");
            AssertClose(el, lse.AsSpan(r * qHeads, qHeads), $"lse row {r}");
        }
    }

    [Fact]
    public void With_a_budget_covering_the_context_sparse_equals_dense()
    {
        const int kvHeads = 2, qHeads = 8, dim = 64, length = 200;
        using var kv = new PagedKvFixture(new PagePoolConfig(1, kvHeads, dim, 16, 32, LogicalPageSize: 4), seed: 29);
        int[] table = kv.AddSequence(length);
        float[] q = kv.RandomFloats(qHeads * dim);
        var batch = new AttentionBatch(qHeads);
        batch.AddSequence([length - 1], length, table);
        using var qb = kv.Device.Allocate<float>(q.Length);
        qb.Write<float>(q);

        foreach (var granularity in new[] { SelectionGranularity.PerKvHead, SelectionGranularity.PerQueryHead })
        {
            PageSelection all = PageSelector.Select(kv.Pool, 0, batch, qb, tokenBudget: 4096, granularity);
            for (int h = 0; h < all.ListsPerSequence; h++)
            {
                Assert.Equal(Enumerable.Range(0, table.Length).ToArray(), all.Entries(0, h).ToArray());
            }
            var sparse = new AttentionBatch(qHeads);
            sparse.AddSequence([length - 1], length, table);
            sparse.SetSelectedPages(0, all, 0);
            var dense = Run(kv, batch, q);
            var selected = Run(kv, sparse, q);
            Assert.Equal(dense.O, selected.O);
            Assert.Equal(dense.Lse, selected.Lse);
        }
    }

    [Fact]
    public void Selection_finds_the_planted_page_and_keeps_the_newest()
    {
        const int kvHeads = 1, qHeads = 2, dim = 32, pageSize = 16, length = 16 * 20;
        using var kv = new PagedKvFixture(new PagePoolConfig(1, kvHeads, dim, pageSize, 32, LogicalPageSize: 4), seed: 31);
        int[] table = kv.AddSequence(length);
        float[] q = kv.RandomFloats(qHeads * dim);
        // Plant a key aligned with q (both query heads) in entry 7: large dot product, so its page wins.
        float[] needle = new float[dim];
        for (int d = 0; d < dim; d++)
        {
            needle[d] = 4 * MathF.Sign(q[d] + q[dim + d]);
        }
        kv.Pool.Append(0, [table[7]], [5], needle, kv.RandomFloats(dim));
        var batch = new AttentionBatch(qHeads);
        batch.AddSequence([length - 1], length, table);
        using var qb = kv.Device.Allocate<float>(q.Length);
        qb.Write<float>(q);

        PageSelection two = PageSelector.Select(kv.Pool, 0, batch, qb, tokenBudget: 2 * pageSize);

        Assert.Equal([7, 19], two.Entries(0, 0).ToArray());
        var e = Assert.Throws<InfiniteException>(() => PageSelector.Select(kv.Pool, 0, batch, qb, tokenBudget: 8));
        Assert.Contains("budget_tokens", e.NativeMessage, StringComparison.Ordinal);
    }
}
