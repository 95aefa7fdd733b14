namespace Infinite.Native.Tests;

/// <summary>Pools with per-layer head counts (<see cref="PagePoolConfig.LayerKvHeads"/>) through the wrapper:
/// bytes, per-layer appends and reads, and the native refusals.</summary>
public sealed class PagePoolLayerHeadsTests
{
    [Fact]
    public void Layers_store_their_own_head_counts()
    {
        using var device = Device.Cpu();
        using var full = PagePool.Create(device, new PagePoolConfig(3, 2, 16, 16, 4, DataType.F32, 8));
        using var part = PagePool.Create(device, new PagePoolConfig(3, 2, 16, 16, 4, DataType.F32, 8) { LayerKvHeads = [2, 0, 1] });
        Assert.Null(full.Config.LayerKvHeads);
        Assert.Equal([2, 0, 1], part.Config.LayerKvHeads);
        Assert.Equal(full.Bytes, part.Bytes * 2);  // 3 of 6 (layer, head) pairs

        var random = new Random(31);
        int[] pages = Enumerable.Repeat(1, 16).ToArray();
        int[] slots = Enumerable.Range(0, 16).ToArray();
        float[] k = Enumerable.Range(0, 16 * 16).Select(_ => (float)(random.NextDouble() * 2 - 1) + 0.01f).ToArray();
        float[] v = Enumerable.Range(0, 16 * 16).Select(_ => (float)(random.NextDouble() * 2 - 1) + 0.01f).ToArray();
        part.Append(2, pages, slots, k, v);
        var kOut = new float[part.Config.PageFloatsOf(2)];
        var vOut = new float[kOut.Length];
        kOut.AsSpan().Fill(float.NaN);
        part.ReadPage(2, 1, kOut, vOut);
        Assert.Equal(k, kOut);  // one head: [tokens][1][dim] reads back as [1][page][dim]
        Assert.Equal(v, vOut);

        var error = Assert.Throws<InfiniteException>(() => part.Append(1, [0], [0], new float[0], new float[0]));
        Assert.Contains("layer (1) of the pool stores no KV heads", error.Message);
        error = Assert.Throws<InfiniteException>(() =>
            PagePool.Create(device, new PagePoolConfig(3, 2, 16, 16, 4) { LayerKvHeads = [2, 3, 1] }));
        Assert.Contains("config->layer_kv_heads[1] (3) must be from 0 to config->kv_heads (2)", error.Message);
        Assert.Throws<ArgumentException>(() => PagePool.Create(device, new PagePoolConfig(3, 2, 16, 16, 4) { LayerKvHeads = [2, 1] }));
    }
}
