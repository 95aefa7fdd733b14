namespace Infinite.Native.Tests;

public sealed class MicroAttentionTests
{
    private static PagePoolConfig Shape(int kvHeads = 2, int headDim = 64, int pageSize = 64, DataType type = DataType.F32) =>
        new(Layers: 1, KvHeads: kvHeads, HeadDim: headDim, PageSize: pageSize, Pages: 32, DataType: type);

    /// <summary>Runs the batch and returns (o, lse) read back from poisoned buffers.</summary>
    private static (float[] O, float[] Lse) Run(PagedKvFixture kv, AttentionBatch batch, float[] q)
    {
        int rows = batch.QueryRows, heads = batch.QueryHeads, dim = kv.Config.HeadDim;
        using var qBuffer = kv.Device.Allocate<float>(q.Length);
        using var oBuffer = kv.Device.Allocate<float>((long)rows * heads * dim);
        using var lseBuffer = kv.Device.Allocate<float>((long)rows * heads);
        qBuffer.Write<float>(q);
        oBuffer.Fill(float.NaN);
        lseBuffer.Fill(float.NaN);
        MicroAttention.Run(kv.Pool, 0, batch, qBuffer, oBuffer, lseBuffer);
        return (oBuffer.ToArray<float>(), lseBuffer.ToArray<float>());
    }

    private static void AssertClose(double[] expected, ReadOnlySpan<float> actual, double tolerance, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            if (double.IsNegativeInfinity(expected[i]))
            {
                Assert.True(float.IsNegativeInfinity(actual[i]), $"{what}[{i}]: expected -inf, got {actual[i]}");
                continue;
            }
            double error = Math.Abs(expected[i] - actual[i]);
            Assert.True(error <= tolerance * (1 + Math.Abs(expected[i])), $"{what}[{i}]: expected {expected[i]}, got {actual[i]}");
        }
    }

    [Theory]
    [InlineData(1, 64, 16, DataType.F32, 1e-5)]
    [InlineData(4, 128, 64, DataType.F32, 1e-5)]
    [InlineData(8, 64, 128, DataType.Bf16, 1e-2)]
    [InlineData(4, 64, 64, DataType.F16, 1e-2)]
    public void Decode_over_ragged_sequences_matches_the_float64_reference(int groupSize, int headDim, int pageSize, DataType type, double tolerance)
    {
        const int kvHeads = 2;
        int qHeads = kvHeads * groupSize;
        using var kv = new PagedKvFixture(Shape(kvHeads, headDim, pageSize, type), seed: groupSize * 1000 + headDim);
        int[] lengths = [1, pageSize + 5, 3 * pageSize];
        var batch = new AttentionBatch(qHeads);
        var tables = lengths.Select(kv.AddSequence).ToArray();
        for (int s = 0; s < lengths.Length; s++)
        {
            batch.AddSequence([lengths[s] - 1], lengths[s], tables[s]);
        }
        float[] q = kv.RandomFloats(lengths.Length * qHeads * headDim);

        var (o, lse) = Run(kv, batch, q);

        for (int s = 0; s < lengths.Length; s++)
        {
            var table = tables[s];
            var (eo, eLse) = AttentionReference.Attend(q[(s * qHeads * headDim)..((s + 1) * qHeads * headDim)], qHeads, kvHeads, headDim,
                1 / Math.Sqrt(headDim), lengths[s] - 1, lengths[s], h => kv.Keys(table, h));
            AssertClose(eo, o.AsSpan(s * qHeads * headDim, qHeads * headDim), tolerance, $"o of sequence {s}");
            AssertClose(eLse, lse.AsSpan(s * qHeads, qHeads), tolerance, $"lse of sequence {s}");
        }
    }

    [Fact]
    public void A_prefill_chunk_is_causal_within_the_chunk()
    {
        const int kvHeads = 2, qHeads = 8, dim = 64, length = 150, chunk = 30;
        using var kv = new PagedKvFixture(Shape(kvHeads, dim, 64), seed: 7);
        int[] table = kv.AddSequence(length);
        int[] positions = Enumerable.Range(length - chunk, chunk).ToArray();
        var batch = new AttentionBatch(qHeads);
        batch.AddSequence(positions, length, table);
        float[] q = kv.RandomFloats(chunk * qHeads * dim);

        var (o, lse) = Run(kv, batch, q);

        for (int r = 0; r < chunk; r++)
        {
            var (eo, eLse) = AttentionReference.Attend(q[(r * qHeads * dim)..((r + 1) * qHeads * dim)], qHeads, kvHeads, dim,
                1 / Math.Sqrt(dim), positions[r], length, h => kv.Keys(table, h));
            AssertClose(eo, o.AsSpan(r * qHeads * dim, qHeads * dim), 1e-5, $"o of row {r}");
            AssertClose(eLse, lse.AsSpan(r * qHeads, qHeads), 1e-5, $"lse of row {r}");
        }
    }

    [Fact]
    public void Per_head_page_lists_restrict_what_each_head_reads()
    {
        const int kvHeads = 2, qHeads = 4, dim = 64;
        using var kv = new PagedKvFixture(Shape(kvHeads, dim, 16), seed: 11);
        int[] table = kv.AddSequence(100);
        var batch = new AttentionBatch(qHeads);
        batch.AddSequence([99], 100, table);
        batch.SetHeadPages(0, 1, [0, 6]); // a sink page and the newest page, like a streaming head
        float[] q = kv.RandomFloats(qHeads * dim);

        var (o, lse) = Run(kv, batch, q);

        var (eo, eLse) = AttentionReference.Attend(q, qHeads, kvHeads, dim, 1 / Math.Sqrt(dim), 99, 100,
            h => h == 1 ? kv.Keys(table, h, [0, 6]) : kv.Keys(table, h));
        AssertClose(eo, o, 1e-5, "o");
        AssertClose(eLse, lse, 1e-5, "lse");
    }

    [Fact]
    public void Split_then_merge_equals_unsplit_and_an_empty_list_is_minus_infinity()
    {
        const int kvHeads = 2, qHeads = 8, dim = 64;
        using var kv = new PagedKvFixture(Shape(kvHeads, dim, 16), seed: 13);
        int[] table = kv.AddSequence(70);
        float[] q = kv.RandomFloats(qHeads * dim);
        AttentionBatch Part(int[]? entries)
        {
            var batch = new AttentionBatch(qHeads);
            batch.AddSequence([69], 70, table);
            for (int h = 0; h < kvHeads && entries is not null; h++)
            {
                batch.SetHeadPages(0, h, entries);
            }
            return batch;
        }

        var (whole, wholeLse) = Run(kv, Part(null), q);
        var (first, firstLse) = Run(kv, Part([0, 1]), q);
        var (second, secondLse) = Run(kv, Part([2, 3, 4]), q);
        var (empty, emptyLse) = Run(kv, Part([]), q);
        Assert.All(emptyLse, v => Assert.True(float.IsNegativeInfinity(v)));
        Assert.All(empty, v => Assert.Equal(0f, v));

        int rows = qHeads;
        using var o1 = kv.Device.Allocate<float>(first.Length);
        using var l1 = kv.Device.Allocate<float>(rows);
        using var o2 = kv.Device.Allocate<float>(second.Length);
        using var l2 = kv.Device.Allocate<float>(rows);
        using var o3 = kv.Device.Allocate<float>(empty.Length);
        using var l3 = kv.Device.Allocate<float>(rows);
        o1.Write<float>(first); l1.Write<float>(firstLse);
        o2.Write<float>(second); l2.Write<float>(secondLse);
        o3.Write<float>(empty); l3.Write<float>(emptyLse);
        using var om = kv.Device.Allocate<float>(whole.Length);
        using var lm = kv.Device.Allocate<float>(rows);
        om.Fill(float.NaN);
        lm.Fill(float.NaN);
        MicroAttention.Merge([(o2, l2), (o3, l3), (o1, l1)], rows, dim, om, lm);
        MicroAttention.Merge([(o1, l1), (o3, l3), (o2, l2)], rows, dim, o1, l1); // in place, another order

        double[] wholeO = whole.Select(v => (double)v).ToArray();
        double[] wholeL = wholeLse.Select(v => (double)v).ToArray();
        AssertClose(wholeO, om.ToArray<float>(), 1e-5, "merged o");
        AssertClose(wholeL, lm.ToArray<float>(), 1e-5, "merged lse");
        AssertClose(wholeO, o1.ToArray<float>(), 1e-5, "in-place merged o");
        AssertClose(wholeL, l1.ToArray<float>(), 1e-5, "in-place merged lse");
    }

    [Fact]
    public void Pages_copied_to_another_pool_give_identical_attention()
    {
        const int qHeads = 4, dim = 64;
        using var kv = new PagedKvFixture(Shape(2, dim, 16), seed: 17);
        int[] table = kv.AddSequence(40);
        float[] q = kv.RandomFloats(qHeads * dim);
        var batch = new AttentionBatch(qHeads);
        batch.AddSequence([39], 40, table);
        var (expected, expectedLse) = Run(kv, batch, q);

        using var other = PagePool.Create(kv.Device, kv.Config);
        int[] moved = [31, 5, 17];
        other.CopyPagesFrom(kv.Pool, table, moved);
        var movedBatch = new AttentionBatch(qHeads);
        movedBatch.AddSequence([39], 40, moved);
        using var qb = kv.Device.Allocate<float>(q.Length);
        using var ob = kv.Device.Allocate<float>(expected.Length);
        using var lb = kv.Device.Allocate<float>(qHeads);
        qb.Write<float>(q);
        ob.Fill(float.NaN);
        MicroAttention.Run(other, 0, movedBatch, qb, ob, lb);

        Assert.Equal(expected, ob.ToArray<float>());
        Assert.Equal(expectedLse, lb.ToArray<float>());
    }

    [Fact]
    public void Bad_input_names_what_is_wrong()
    {
        using var kv = new PagedKvFixture(Shape(2, 64, 16), seed: 19);
        int[] table = kv.AddSequence(20);
        using var q = kv.Device.Allocate<float>(8); // far too small for 4 heads x 64
        using var o = kv.Device.Allocate<float>(4 * 64);
        using var lse = kv.Device.Allocate<float>(4);
        var batch = new AttentionBatch(4);
        batch.AddSequence([19], 20, table);
        var small = Assert.Throws<InfiniteException>(() => MicroAttention.Run(kv.Pool, 0, batch, q, o, lse));
        Assert.Equal(InfiniteStatus.OutOfRange, small.Status);
        Assert.Contains("q", small.NativeMessage, StringComparison.Ordinal);

        using var q2 = kv.Device.Allocate<float>(4 * 64);
        var badPage = new AttentionBatch(4);
        badPage.AddSequence([19], 20, [table[0], 999]);
        var e = Assert.Throws<InfiniteException>(() => MicroAttention.Run(kv.Pool, 0, badPage, q2, o, lse));
        Assert.Contains("999", e.NativeMessage, StringComparison.Ordinal);

        var badLayer = Assert.Throws<InfiniteException>(() => MicroAttention.Run(kv.Pool, 3, batch, q2, o, lse));
        Assert.Contains("layer", badLayer.NativeMessage, StringComparison.Ordinal);

        var config = Assert.Throws<InfiniteException>(() => PagePool.Create(kv.Device, Shape() with { PageSize = 48 }));
        Assert.Equal(InfiniteStatus.InvalidArgument, config.Status);
        Assert.Contains("page_size", config.NativeMessage, StringComparison.Ordinal);
    }
}
