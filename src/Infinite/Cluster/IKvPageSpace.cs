namespace Infinite.Cluster;

/// <summary>
/// The KV pages a scheduler hands out to requests: one pool (<see cref="Engine.PageAllocator"/>) or the pools of a
/// cluster of instances, where a request has a home instance and may borrow pages on others (rManager / gManager).
/// Page ids are global: instance i's local page p is <c>i * PagesPerInstance + p</c>. Not thread-safe: the engine
/// calls it under its lock.
/// </summary>
public interface IKvPageSpace
{
    int Instances { get; }
    int PagesPerInstance { get; }
    int TotalPages { get; }
    int FreePages { get; }
    int UsedPages { get; }

    /// <summary>Most pages one request can ever hold (a single instance's pool without borrowing).</summary>
    int MaxPagesPerRequest { get; }

    /// <summary>Chooses the home instance of a new request expected to need <paramref name="pages"/> pages, or -1
    /// when none can take it now.</summary>
    int PlaceRequest(long requestId, int pages);

    /// <summary>Appends pages to <paramref name="table"/> until it has <paramref name="pages"/> entries: local pages of
    /// <paramref name="home"/> first, then pages borrowed on other instances when the policy allows; false, with
    /// nothing taken, when that many cannot be had.</summary>
    bool TryGrow(long requestId, int home, List<int> table, int pages);

    /// <summary>Returns every page of <paramref name="table"/> to its instance and clears it.</summary>
    void Release(long requestId, List<int> table);

    /// <summary>The instance that holds a global page.</summary>
    int InstanceOf(int page) => page / PagesPerInstance;
}
