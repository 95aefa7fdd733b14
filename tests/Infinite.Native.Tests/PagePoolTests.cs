namespace Infinite.Native.Tests;

public sealed class PagePoolTests
{
    [Fact]
    public void Appended_tokens_read_back_exactly_in_f32_and_summaries_bound_them()
    {
        var config = new PagePoolConfig(Layers: 2, KvHeads: 2, HeadDim: 16, PageSize: 32, Pages: 4, LogicalPageSize: 16);
        using var kv = new PagedKvFixture(config, seed: 3);
        float[] k = kv.RandomFloats(20 * config.TokenWidth);
        float[] v = kv.RandomFloats(20 * config.TokenWidth);
        int[] pages = Enumerable.Repeat(2, 20).ToArray();
        int[] slots = Enumerable.Range(0, 20).ToArray();
        kv.Pool.Append(1, pages, slots, k, v);

        var pk = new float[config.PageFloats];
        var pv = new float[config.PageFloats];
        kv.Pool.ReadPage(1, 2, pk, pv);
        float[] summary = kv.Pool.ReadSummary(1, 2);
        for (int h = 0; h < 2; h++)
        {
            for (int t = 0; t < 20; t++)
            {
                for (int d = 0; d < 16; d++)
                {
                    float expected = k[(t * 2 + h) * 16 + d];
                    Assert.Equal(expected, pk[(h * 32 + t) * 16 + d]);
                    Assert.Equal(v[(t * 2 + h) * 16 + d], pv[(h * 32 + t) * 16 + d]);
                    int sub = t / 16;
                    float min = summary[((h * 2 + sub) * 2 + 0) * 16 + d];
                    float max = summary[((h * 2 + sub) * 2 + 1) * 16 + d];
                    Assert.InRange(expected, min, max);
                }
            }
        }
    }

    [Theory]
    [InlineData(16)]
    [InlineData(8)]
    public void Compact_summaries_bound_the_keys_and_take_fewer_bytes(int bits)
    {
        var wide = new PagePoolConfig(Layers: 1, KvHeads: 2, HeadDim: 16, PageSize: 32, Pages: 4, LogicalPageSize: 16);
        var config = wide with { SummaryBits = bits };
        using var kv = new PagedKvFixture(config, seed: 11);
        using var reference = new PagedKvFixture(wide, seed: 11);
        Assert.Equal(bits, kv.Pool.Config.SummaryBits);
        Assert.True(kv.Pool.Bytes < reference.Pool.Bytes, $"{bits}-bit summaries: {kv.Pool.Bytes} bytes, float32: {reference.Pool.Bytes}");
        float[] k = kv.RandomFloats(32 * config.TokenWidth);
        float[] v = kv.RandomFloats(32 * config.TokenWidth);
        int[] pages = Enumerable.Repeat(1, 32).ToArray();
        int[] slots = Enumerable.Range(0, 32).ToArray();
        kv.Pool.Append(0, pages, slots, k, v);
        float[] summary = kv.Pool.ReadSummary(0, 1);
        for (int h = 0; h < 2; h++)
        {
            for (int t = 0; t < 32; t++)
            {
                for (int d = 0; d < 16; d++)
                {
                    int sub = t / 16;
                    Assert.InRange(k[(t * 2 + h) * 16 + d], summary[((h * 2 + sub) * 2 + 0) * 16 + d], summary[((h * 2 + sub) * 2 + 1) * 16 + d]);
                }
            }
        }
    }

    [Fact]
    public void A_pool_is_a_device_child_and_counted_while_alive()
    {
        LiveObjects before = InfiniteLibrary.GetLiveObjects();
        var device = Device.Cpu();
        var pool = PagePool.Create(device, new PagePoolConfig(1, 1, 8, 16, 2));
        Assert.True(pool.Bytes >= 2 * 2 * 16 * 8 * sizeof(float));
        device.Dispose();
        Assert.Equal(before.PagePools + 1, InfiniteLibrary.GetLiveObjects().PagePools);
        Assert.Equal(before.Devices + 1, InfiniteLibrary.GetLiveObjects().Devices);
        pool.Dispose();
        Assert.Equal(before, InfiniteLibrary.GetLiveObjects());
    }

    [Fact]
    public void Mismatched_spans_are_refused_before_native_code()
    {
        using var kv = new PagedKvFixture(new PagePoolConfig(1, 2, 8, 16, 2), seed: 5);
        Assert.Throws<ArgumentException>(() => kv.Pool.Append(0, [0, 0], [0], new float[32], new float[32]));
        Assert.Throws<ArgumentException>(() => kv.Pool.Append(0, [0], [0], new float[15], new float[16]));
        var e = Assert.Throws<InfiniteException>(() => kv.Pool.Append(0, [7], [0], new float[16], new float[16]));
        Assert.Contains("7", e.NativeMessage, StringComparison.Ordinal);
    }
}
