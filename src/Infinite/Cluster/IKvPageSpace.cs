namespace Infinite.Cluster;

/// <summary>
/// The KV pages a scheduler hands out to requests: one pool (<see cref="Engine.PageAllocator"/>) or the pools of a
/// cluster of instances, where a request has a home instance and may borrow pages on others (rManager / gManager,
/// <see cref="ClusterPageSpace"/>). Page ids are global: instance i's local page p is <c>i * PagesPerInstance + p</c>.
/// Not thread-safe: the engine calls it under its lock.
/// </summary>
public interface IKvPageSpace
{
    /// <summary>Instances whose pools make up the space (1 for one device).</summary>
    int Instances { get; }

    /// <summary>Pages of each instance's pool; global page ids run 0 .. Instances * PagesPerInstance - 1.</summary>
    int PagesPerInstance { get; }

    /// <summary>Instances * PagesPerInstance, failed instances included (the id space does not shrink).</summary>
    int TotalPages { get; }

    /// <summary>Pages that can still be handed out (free pages of live instances).</summary>
    int FreePages { get; }

    /// <summary>Pages held by requests.</summary>
    int UsedPages { get; }

    /// <summary>Most pages one request can ever hold when it runs alone: one instance's pool without borrowing, plus
    /// what the other instances may lend when the space borrows.</summary>
    int MaxPagesPerRequest { get; }

    /// <summary>Chooses the home instance of a new request expected to need <paramref name="pages"/> pages, or -1
    /// when none can take it now.</summary>
    int PlaceRequest(long requestId, int pages);

    /// <summary>Appends pages to <paramref name="table"/> until it has <paramref name="pages"/> entries: local pages of
    /// <paramref name="home"/> first, then pages borrowed on other instances when the policy allows; false, with
    /// nothing taken, when that many cannot be had.</summary>
    bool TryGrow(long requestId, int home, List<int> table, int pages);

    /// <summary>Returns every page of <paramref name="table"/> to its instance and clears it; the request is then
    /// forgotten (a later <see cref="PlaceRequest"/> places it afresh).</summary>
    void Release(long requestId, List<int> table);

    /// <summary>Pages <see cref="TryGrow"/> could add for this request right now (its home's free pages plus what it
    /// may borrow), so a scheduler sizes prefill chunks that are sure to get their pages.</summary>
    int AvailableTo(long requestId, int home) => FreePages;

    /// <summary>The instance that holds a global page.</summary>
    int InstanceOf(int page) => page / PagesPerInstance;
}
