namespace Infinite.Engine;

/// <summary>
/// Free list over the executor's KV pages. A request's page table is a list the allocator appends to as its KV
/// grows and empties when it ends; ownership is tracked so a double release is caught instead of corrupting the cache.
/// </summary>
public sealed class PageAllocator
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
