using Infinite.Cluster;

namespace Infinite.Engine;

/// <summary>
/// Free list over the executor's KV pages. A request's page table is a list the allocator appends to as its KV
/// grows and empties when it ends; ownership is tracked so a double release is caught instead of corrupting the cache.
/// As an <see cref="IKvPageSpace"/> it is the one-instance space: every request is homed on instance 0 and never
/// borrows.
/// </summary>
public sealed class PageAllocator : IKvPageSpace
{
    private readonly Stack<int> _free;
    private readonly bool[] _used;

    public PageAllocator(int pageCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(pageCount);
        _used = new bool[pageCount];
        _free = new Stack<int>(pageCount);
        // Pushed in reverse so page 0 is handed out first (easier to read in logs and tests).
        for (int p = pageCount - 1; p >= 0; p--)
            _free.Push(p);
    }

    public int TotalPages => _used.Length;
    public int FreePages => _free.Count;
    public int UsedPages => _used.Length - _free.Count;

    /// <summary>One pool: instance 0.</summary>
    public int Instances => 1;
    public int PagesPerInstance => _used.Length;
    /// <summary>The whole pool: a request alone can have every page.</summary>
    public int MaxPagesPerRequest => _used.Length;

    /// <summary>Instance 0 when the request could ever fit (<paramref name="pages"/> at most the pool), else -1;
    /// whether the pages are free now is the scheduler's concern, as before.</summary>
    public int PlaceRequest(long requestId, int pages)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(pages);
        return pages <= _used.Length ? 0 : -1;
    }

    /// <summary>As <see cref="TryGrow(List{int}, int)"/>; <paramref name="home"/> must be 0.</summary>
    public bool TryGrow(long requestId, int home, List<int> table, int pages)
    {
        if (home != 0)
            throw new ArgumentOutOfRangeException(nameof(home), home, "A single pool has only instance 0.");
        return TryGrow(table, pages);
    }

    /// <summary>As <see cref="Release(List{int})"/>.</summary>
    public void Release(long requestId, List<int> table) => Release(table);

    /// <summary>The free pages: there is nothing to borrow.</summary>
    public int AvailableTo(long requestId, int home) => _free.Count;

    /// <summary>Always 0.</summary>
    public int InstanceOf(int page) => 0;

    /// <summary>Pages needed to hold <paramref name="tokens"/> tokens.</summary>
    public static int PagesFor(int tokens, int pageSize) => (tokens + pageSize - 1) / pageSize;

    /// <summary>Appends pages to <paramref name="table"/> until it has <paramref name="pages"/> entries; false (and
    /// nothing taken) when too few are free.</summary>
    public bool TryGrow(List<int> table, int pages)
    {
        ArgumentNullException.ThrowIfNull(table);
        int needed = pages - table.Count;
        if (needed <= 0)
            return true;
        if (needed > _free.Count)
            return false;
        for (int i = 0; i < needed; i++)
        {
            int page = _free.Pop();
            _used[page] = true;
            table.Add(page);
        }
        return true;
    }

    /// <summary>Returns every page of <paramref name="table"/> and clears it.</summary>
    public void Release(List<int> table)
    {
        ArgumentNullException.ThrowIfNull(table);
        foreach (int page in table)
        {
            if ((uint)page >= (uint)_used.Length || !_used[page])
                throw new InvalidOperationException($"Page {page} is released but is not allocated.");
            _used[page] = false;
            _free.Push(page);
        }
        table.Clear();
    }
}
