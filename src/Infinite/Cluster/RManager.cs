namespace Infinite.Cluster;

/// <summary>
/// The page accounting of one instance (the paper's rManager). It owns the free list of the instance's local pages
/// and, per request, the pages it holds here: <em>own</em> when the request is homed here, <em>lent</em> when it is
/// homed elsewhere. For its own requests it also counts the pages they <em>borrowed</em> on other instances, so a
/// debtor knows its debt. It lends only up to a cap (protecting its own requests), only to a request's home (the loop
/// guard), grants move reservations first come first served, and reports changes in heartbeats from which a gManager
/// can be rebuilt. Local page ids are 0 .. TotalPages-1; exceptions name the global id
/// <c>Instance * TotalPages + local</c>. Not thread-safe.
/// </summary>
public sealed class RManager
{
    private readonly Stack<int> _free;
    private readonly long[] _owner;
    private readonly bool[] _held;
    private readonly bool[] _reserved;
    private readonly Dictionary<long, Entry> _requests = [];
    private readonly HashSet<long> _dirty = [];
    private long _sequence;
    private bool _stateChanged = true;
    private int _batchTokens;
    private int _waiting;
    private readonly bool _lendAllWhenIdle;

    /// <param name="instance">This instance's index (0-based).</param>
    /// <param name="pages">Pages of this instance's pool.</param>
    /// <param name="options">Lending cap; defaults when null.</param>
    public RManager(int instance, int pages, RManagerOptions? options = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(instance);
        ArgumentOutOfRangeException.ThrowIfNegative(pages);
        Instance = instance;
        TotalPages = pages;
        options ??= new RManagerOptions();
        LendCapPages = options.LendCapPages(pages);
        _lendAllWhenIdle = options.LendAllWhenIdle;
        _owner = new long[pages];
        _held = new bool[pages];
        _reserved = new bool[pages];
        _free = new Stack<int>(pages);
        // Pushed in reverse so local page 0 is handed out first, as in PageAllocator.
        for (int p = pages - 1; p >= 0; p--)
            _free.Push(p);
    }

    /// <summary>This instance's index.</summary>
    public int Instance { get; }
    /// <summary>Pages of the pool.</summary>
    public int TotalPages { get; }

    /// <summary>Most pages this instance lends at once (the lending cap applied to its pool).</summary>
    public int LendCapPages { get; }

    /// <summary>Pages here held by requests homed here.</summary>
    public int Own { get; private set; }

    /// <summary>Pages here held by requests homed elsewhere.</summary>
    public int Lent { get; private set; }

    /// <summary>Pages on other instances held by requests homed here.</summary>
    public int Borrowed { get; private set; }

    /// <summary>Pages here taken by move reservations not yet committed (counted in Own or Lent too).</summary>
    public int Reserved { get; private set; }

    /// <summary>Pages on the free list. Own + Lent + Free == TotalPages always, also after a failure (a failed
    /// instance keeps counting, it just never hands pages out).</summary>
    public int Free => _free.Count;

    /// <summary>Most pages this instance ever lends at once: the whole pool when it lends all while idle
    /// (<see cref="RManagerOptions.LendAllWhenIdle"/>), else the cap.</summary>
    public int MaxLendPages => _lendAllWhenIdle ? TotalPages : LendCapPages;

    /// <summary>True when the cap is lifted right now: lending all while idle is on and no request is homed here or
    /// waits for this instance.</summary>
    public bool IsIdleLender => _lendAllWhenIdle && RunningRequests == 0 && _waiting == 0;

    private int LendLimit => IsIdleLender ? TotalPages : LendCapPages;

    /// <summary>Pages this instance would lend right now.</summary>
    public int LendablePages => IsFailed ? 0 : Math.Max(0, Math.Min(Free, LendLimit - Lent));

    /// <summary>Requests homed here (the instance's decode batch).</summary>
    public int RunningRequests { get; private set; }

    /// <summary>Tokens of the instance's last step, as reported by whoever runs the steps (sent in heartbeats).</summary>
    public int BatchTokens
    {
        get => _batchTokens;
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            _stateChanged |= value != _batchTokens;
            _batchTokens = value;
        }
    }

    /// <summary>Requests waiting to be admitted with this instance as their home, as reported by a scheduler that keeps
    /// one queue per instance (0 with one global queue): demand that keeps the lending cap on.</summary>
    public int WaitingRequests
    {
        get => _waiting;
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            _stateChanged |= value != _waiting;
            _waiting = value;
        }
    }

    /// <summary>True once <see cref="Fail"/> was called: nothing is handed out here again.</summary>
    public bool IsFailed { get; private set; }

    /// <summary>True when a heartbeat would carry something new.</summary>
    public bool HasChanges => _stateChanged || _dirty.Count > 0;

    /// <summary>Requests with pages here (reserved ones included) or homed here.</summary>
    public IEnumerable<long> Requests => _requests.Keys;

    /// <summary>Pages here held by the request (reserved ones included).</summary>
    public int BlocksOf(long requestId) => _requests.TryGetValue(requestId, out Entry? e) ? e.Blocks : 0;

    /// <summary>Pages on other instances held by a request homed here.</summary>
    public int BorrowedBy(long requestId) => _requests.TryGetValue(requestId, out Entry? e) ? e.Borrowed : 0;

    /// <summary>True when the request is homed here.</summary>
    public bool IsHome(long requestId) => _requests.TryGetValue(requestId, out Entry? e) && e.Local;

    /// <summary>Makes this instance the request's home (counts it in the batch). Idempotent.</summary>
    public void Register(long requestId)
    {
        if (_requests.TryGetValue(requestId, out Entry? e))
        {
            if (e.Local)
                return;
            throw new InvalidOperationException(
                $"Request {requestId} holds lent pages on instance {Instance}, so it cannot be homed there.");
        }
        _requests[requestId] = new Entry { Local = true };
        RunningRequests++;
        Touch(requestId);
    }

    /// <summary>Forgets a request homed here once it holds nothing here or elsewhere.</summary>
    public void Unregister(long requestId)
    {
        if (!_requests.TryGetValue(requestId, out Entry? e) || !e.Local)
            throw new InvalidOperationException($"Request {requestId} is not homed on instance {Instance}.");
        if (e.Blocks > 0 || e.Borrowed > 0)
            throw new InvalidOperationException(
                $"Request {requestId} still holds {e.Blocks} pages on instance {Instance} and {e.Borrowed} borrowed elsewhere.");
        e.Local = false;
        RunningRequests--;
        Touch(requestId);
    }

    /// <summary>Takes <paramref name="pages"/> local pages for a request homed here, appending their local ids to
    /// <paramref name="localPages"/>; false, with nothing taken, when too few are free or the instance failed.</summary>
    public bool TryAllocate(long requestId, int pages, List<int> localPages)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(pages);
        ArgumentNullException.ThrowIfNull(localPages);
        Entry e = HomeEntry(requestId);
        if (IsFailed || pages > Free)
            return false;
        Take(requestId, e, pages, reserved: false, localPages);
        return true;
    }

    /// <summary>
    /// Lends pages to a request homed on <paramref name="home"/>, asked by instance <paramref name="requester"/>.
    /// Refuses when the requester is not the request's home (loop guard), when the cap would be exceeded, or when too
    /// few pages are free; all or nothing.
    /// </summary>
    public LendDecision Lend(long requestId, int requester, int home, int pages, List<int> localPages)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(requester);
        ArgumentOutOfRangeException.ThrowIfNegative(home);
        ArgumentOutOfRangeException.ThrowIfNegative(pages);
        ArgumentNullException.ThrowIfNull(localPages);
        if (home == Instance)
            throw new ArgumentException($"Request {requestId} is homed on instance {Instance}: allocate, do not lend.", nameof(home));
        if (requester != home)
            return LendDecision.LoopGuard;
        return TakeRemote(requestId, pages, reserved: false, localPages);
    }

    /// <summary>
    /// Reserves pages here as the destination of a move of the request's KV (first come, first served: the pages are
    /// taken now, so a later reservation sees only what is left). For a request homed elsewhere the lending cap
    /// applies. The pages count as the request's at once; <see cref="CommitReserved"/> marks them live after the
    /// copy, <see cref="Release"/> gives them back on abort.
    /// </summary>
    public LendDecision Reserve(long requestId, int home, int pages, List<int> localPages)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(home);
        ArgumentOutOfRangeException.ThrowIfNegative(pages);
        ArgumentNullException.ThrowIfNull(localPages);
        if (home != Instance)
            return TakeRemote(requestId, pages, reserved: true, localPages);
        Entry e = HomeEntry(requestId);
        if (IsFailed)
            return LendDecision.Failed;
        if (pages > Free)
            return LendDecision.NoFreePages;
        Take(requestId, e, pages, reserved: true, localPages);
        return LendDecision.Granted;
    }

    /// <summary>Marks reserved pages of a move as live KV once the copy into them is done.</summary>
    public void CommitReserved(long requestId, IEnumerable<int> localPages)
    {
        ArgumentNullException.ThrowIfNull(localPages);
        foreach (int page in localPages)
        {
            CheckHeld(requestId, page);
            if (!_reserved[page])
                throw new InvalidOperationException($"Page {GlobalId(page)} of request {requestId} is not reserved.");
            _reserved[page] = false;
            Reserved--;
        }
    }

    /// <summary>Returns one page of the request to the free list (also a reserved one, on abort). Releasing a page
    /// the request does not hold throws with the page's global id.</summary>
    public void Release(long requestId, int localPage)
    {
        CheckHeld(requestId, localPage);
        Entry e = _requests[requestId];
        _held[localPage] = false;
        if (_reserved[localPage])
        {
            _reserved[localPage] = false;
            Reserved--;
        }
        _free.Push(localPage);
        e.Blocks--;
        if (e.Local)
            Own--;
        else
            Lent--;
        Forget(requestId, e);
        Touch(requestId);
    }

    /// <summary>Records that a request homed here gained (positive) or gave back (negative) pages on another
    /// instance.</summary>
    public void NoteBorrowed(long requestId, int delta)
    {
        Entry e = HomeEntry(requestId);
        if (e.Borrowed + delta < 0)
            throw new InvalidOperationException(
                $"Request {requestId} would owe {e.Borrowed + delta} pages (instance {Instance}).");
        e.Borrowed += delta;
        Borrowed += delta;
        _stateChanged = true;
    }

    /// <summary>Marks the instance lost: it never hands out, lends or reserves a page again. Releases are still
    /// accepted so the accounts of the requests that had pages here can be closed.</summary>
    public void Fail()
    {
        _stateChanged |= !IsFailed;
        IsFailed = true;
    }

    /// <summary>The heartbeat with the entries that changed since the previous one.</summary>
    public Heartbeat TakeHeartbeat()
    {
        var entries = new List<HeartbeatEntry>(_dirty.Count);
        foreach (long id in _dirty)
            entries.Add(EntryOf(id));
        entries.Sort(CompareEntries);
        _dirty.Clear();
        _stateChanged = false;
        return new Heartbeat(Instance, ++_sequence, Full: false, entries, State);
    }

    /// <summary>A full snapshot for rebuilding a gManager; it does not consume the pending changes (entries are
    /// absolute, so the next delta heartbeat may repeat some harmlessly).</summary>
    public Heartbeat FullHeartbeat()
    {
        var entries = new List<HeartbeatEntry>(_requests.Count);
        foreach (long id in _requests.Keys)
            entries.Add(EntryOf(id));
        entries.Sort(CompareEntries);
        return new Heartbeat(Instance, _sequence, Full: true, entries, State);
    }

    /// <summary>The instance as a gManager sees it.</summary>
    public InstanceView State => new(Instance, TotalPages, Free, LendablePages, RunningRequests, _batchTokens, IsFailed);

    internal static int CompareEntries(HeartbeatEntry a, HeartbeatEntry b)
    {
        int c = a.RequestId.CompareTo(b.RequestId);
        return c != 0 ? c : a.Instance.CompareTo(b.Instance);
    }

    private LendDecision TakeRemote(long requestId, int pages, bool reserved, List<int> localPages)
    {
        if (IsFailed)
            return LendDecision.Failed;
        if (_requests.TryGetValue(requestId, out Entry? e) && e.Local)
            throw new InvalidOperationException($"Request {requestId} is homed on instance {Instance}, not remote to it.");
        if (Lent + pages > LendLimit)
            return LendDecision.CapReached;
        if (pages > Free)
            return LendDecision.NoFreePages;
        if (e is null)
        {
            e = new Entry();
            _requests[requestId] = e;
        }
        Take(requestId, e, pages, reserved, localPages);
        return LendDecision.Granted;
    }

    private void Take(long requestId, Entry e, int pages, bool reserved, List<int> localPages)
    {
        for (int i = 0; i < pages; i++)
        {
            int page = _free.Pop();
            _held[page] = true;
            _owner[page] = requestId;
            _reserved[page] = reserved;
            localPages.Add(page);
        }
        e.Blocks += pages;
        if (reserved)
            Reserved += pages;
        if (e.Local)
            Own += pages;
        else
            Lent += pages;
        if (pages > 0)
            Touch(requestId);
    }

    private Entry HomeEntry(long requestId)
    {
        if (!_requests.TryGetValue(requestId, out Entry? e) || !e.Local)
            throw new InvalidOperationException($"Request {requestId} is not homed on instance {Instance}.");
        return e;
    }

    private void CheckHeld(long requestId, int localPage)
    {
        if ((uint)localPage >= (uint)TotalPages)
            throw new InvalidOperationException(
                $"Page {localPage} is not a page of instance {Instance} (it has {TotalPages}).");
        if (!_held[localPage])
            throw new InvalidOperationException(
                $"Page {GlobalId(localPage)} (instance {Instance}, local {localPage}) is released but is not allocated.");
        if (_owner[localPage] != requestId)
            throw new InvalidOperationException(
                $"Page {GlobalId(localPage)} (instance {Instance}, local {localPage}) belongs to request {_owner[localPage]}, not {requestId}.");
    }

    private long GlobalId(int localPage) => (long)Instance * TotalPages + localPage;

    private void Forget(long requestId, Entry e)
    {
        if (e.Blocks == 0 && !e.Local && e.Borrowed == 0)
            _requests.Remove(requestId);
    }

    private void Touch(long requestId)
    {
        _dirty.Add(requestId);
        _stateChanged = true;
        if (_requests.TryGetValue(requestId, out Entry? e))
            Forget(requestId, e);
    }

    private HeartbeatEntry EntryOf(long requestId) =>
        _requests.TryGetValue(requestId, out Entry? e)
            ? new HeartbeatEntry(requestId, Instance, e.Blocks, e.Local)
            : new HeartbeatEntry(requestId, Instance, 0, false);

    private sealed class Entry
    {
        public int Blocks;
        public int Borrowed;
        public bool Local;
    }
}
