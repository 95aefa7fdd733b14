using Infinite.Cluster;
using Infinite.Engine;

namespace Infinite.Simulation;

/// <summary>
/// One pool for one instance: the page space of the vLLM-S baseline, where a single tensor-parallel instance spans
/// every GPU and so owns all their KV memory. A thin adapter of the engine's own <see cref="PageAllocator"/>.
/// </summary>
public sealed class PooledPageSpace : IKvPageSpace
{
    private readonly PageAllocator _pages;

    public PooledPageSpace(int pages) => _pages = new PageAllocator(pages);

    public int Instances => 1;
    public int PagesPerInstance => _pages.TotalPages;
    public int TotalPages => _pages.TotalPages;
    public int FreePages => _pages.FreePages;
    public int UsedPages => _pages.UsedPages;
    public int MaxPagesPerRequest => _pages.TotalPages;

    public int PlaceRequest(long requestId, int pages) => pages <= _pages.FreePages ? 0 : -1;

    public bool TryGrow(long requestId, int home, List<int> table, int pages)
    {
        if (home != 0)
            throw new ArgumentOutOfRangeException(nameof(home), home, "A pooled page space has only instance 0.");
        return _pages.TryGrow(table, pages);
    }

    public void Release(long requestId, List<int> table) => _pages.Release(table);
}
