namespace Infinite.Native.Tests;

/// <summary>
/// A CPU page pool filled with random keys and values for a few sequences, whose pages are taken
/// from a shuffled free list (so page tables are not contiguous), remembering what was stored
/// (read back, so f16/bf16 rounding is in the reference too).
/// </summary>
internal sealed class PagedKvFixture : IDisposable
{
    private readonly Dictionary<int, (float[] K, float[] V)> _pages = [];

    public PagedKvFixture(PagePoolConfig config, int seed)
    {
        Random = new Random(seed);
        Device = Device.Cpu();
        Pool = PagePool.Create(Device, config);
        Free = new Stack<int>(Enumerable.Range(0, config.Pages).OrderBy(_ => Random.Next()));
    }

    public Random Random { get; }

    public Device Device { get; }

    public PagePool Pool { get; }

    public PagePoolConfig Config => Pool.Config;

    public Stack<int> Free { get; }

    public float[] RandomFloats(int n)
    {
        var values = new float[n];
        for (int i = 0; i < n; i++)
        {
            values[i] = (float)(Random.NextDouble() * 2 - 1);
        }
        return values;
    }

    /// <summary>Appends <paramref name="tokens"/> random tokens to fresh pages of layer 0; returns the page table.</summary>
    public int[] AddSequence(int tokens)
    {
        int pageSize = Config.PageSize;
        int[] table = Enumerable.Range(0, (tokens + pageSize - 1) / pageSize).Select(_ => Free.Pop()).ToArray();
        int[] pages = Enumerable.Range(0, tokens).Select(t => table[t / pageSize]).ToArray();
        int[] slots = Enumerable.Range(0, tokens).Select(t => t % pageSize).ToArray();
        Pool.Append(0, pages, slots, RandomFloats(tokens * Config.TokenWidth), RandomFloats(tokens * Config.TokenWidth));
        foreach (int page in table)
        {
            var k = new float[Config.PageFloats];
            var v = new float[Config.PageFloats];
            Pool.ReadPage(0, page, k, v);
            _pages[page] = (k, v);
        }
        return table;
    }

    /// <summary>Keys and values of KV head <paramref name="head"/> in the given entries of a page table.</summary>
    public IEnumerable<(int Position, float[] K, float[] V)> Keys(int[] table, int head, IEnumerable<int>? entries = null, int[]? positions = null)
    {
        int pageSize = Config.PageSize;
        int dim = Config.HeadDim;
        foreach (int e in entries ?? Enumerable.Range(0, table.Length))
        {
            var (k, v) = _pages[table[e]];
            int first = positions?[e] ?? e * pageSize;
            for (int t = 0; t < pageSize; t++)
            {
                int offset = (head * pageSize + t) * dim;
                yield return (first + t, k[offset..(offset + dim)], v[offset..(offset + dim)]);
            }
        }
    }

    public void Dispose()
    {
        Pool.Dispose();
        Device.Dispose();
    }
}
