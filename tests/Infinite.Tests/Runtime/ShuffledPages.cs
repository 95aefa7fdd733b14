namespace Infinite.Tests.Runtime;

/// <summary>Hands out page ids in a seeded shuffled order, so page tables are never the identity.</summary>
internal sealed class ShuffledPages
{
    private readonly Queue<int> _free;

    public ShuffledPages(int pageSize, int pageCount, int seed)
    {
        PageSize = pageSize;
        int[] ids = Enumerable.Range(0, pageCount).ToArray();
        new Random(seed).Shuffle(ids);
        _free = new Queue<int>(ids);
    }

    public int PageSize { get; }

    public int Take() => _free.Count > 0 ? _free.Dequeue() : throw new InvalidOperationException("the test ran out of pages");
}
