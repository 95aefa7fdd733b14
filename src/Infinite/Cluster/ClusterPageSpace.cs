namespace Infinite.Cluster;

/// <summary>
/// The KV page space of a cluster: N instances of <see cref="PagesPerInstance"/> pages, each accounted by its
/// <see cref="RManager"/>, with a <see cref="GManager"/> (fed by their heartbeats) taking placement decisions through
/// its policy. A request is placed on a home instance, grows on its home's free pages first and then borrows from
/// creditors (both sides account the debt), and may have pages migrated between instances in two phases
/// (<see cref="PrepareMove"/>, copy, <see cref="CommitMove"/> / <see cref="AbortMove"/>). A lost instance
/// (<see cref="MarkFailed"/>) fails only the requests that had pages there, and its pages are never handed out again.
/// Page ids are global (<c>instance * PagesPerInstance + local</c>). Not thread-safe: the engine calls it under its
/// lock, and runs page copies on the same thread that grows tables, so a page freed by a release during a copy is
/// never handed out before the copy ends.
/// </summary>
public sealed class ClusterPageSpace : IKvPageSpace
{
    private readonly RManager[] _rm;
    private readonly Dictionary<long, RequestState> _requests = [];

    /// <param name="instances">Instances (at least one).</param>
    /// <param name="pagesPerInstance">Pages of each instance's pool.</param>
    /// <param name="pageSize">Tokens per page (for the policy's cost model).</param>
    /// <param name="policy">Placement decisions (<see cref="BorrowingPolicy"/>, <see cref="StaticPolicy"/>).</param>
    /// <param name="rManagerOptions">Lending cap of every instance; defaults when null.</param>
    /// <param name="gManagerOptions">Move throttle; defaults when null.</param>
    public ClusterPageSpace(int instances, int pagesPerInstance, int pageSize, IPlacementPolicy policy,
        RManagerOptions? rManagerOptions = null, GManagerOptions? gManagerOptions = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(instances);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(pagesPerInstance);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(pageSize);
        ArgumentNullException.ThrowIfNull(policy);
        if ((long)instances * pagesPerInstance > int.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(pagesPerInstance), pagesPerInstance,
                "Global page ids (instances * pagesPerInstance) must fit an int.");
        PagesPerInstance = pagesPerInstance;
        PageSize = pageSize;
        Policy = policy;
        _rm = new RManager[instances];
        for (int i = 0; i < instances; i++)
            _rm[i] = new RManager(i, pagesPerInstance, rManagerOptions);
        GManager = new GManager(instances, pagesPerInstance, pageSize, policy, gManagerOptions);
        Heartbeat();
    }

    /// <inheritdoc/>
    public int Instances => _rm.Length;
    /// <inheritdoc/>
    public int PagesPerInstance { get; }
    /// <summary>Tokens per page.</summary>
    public int PageSize { get; }
    /// <inheritdoc/>
    public int TotalPages => _rm.Length * PagesPerInstance;
    /// <summary>The gManager's policy (also decides whether TryGrow may borrow).</summary>
    public IPlacementPolicy Policy { get; }
    /// <summary>The global manager, fed only by the rManagers' heartbeats.</summary>
    public GManager GManager { get; }
    /// <summary>Per-instance accounts (own / lent / borrowed / free), for stats and failure handling.</summary>
    public IReadOnlyList<RManager> RManagers => _rm;

    /// <summary>When true (default) every decision first sends the rManagers' pending heartbeats, so the gManager is
    /// never stale in-process; set false to send them only from <see cref="Heartbeat"/> (e.g. once per step, as in
    /// the paper, or in a simulator studying staleness).</summary>
    public bool HeartbeatEveryOperation { get; set; } = true;

    /// <inheritdoc/>
    public int FreePages => _rm.Where(r => !r.IsFailed).Sum(r => r.Free);
    /// <inheritdoc/>
    public int UsedPages => _rm.Sum(r => r.Own + r.Lent);

    /// <summary>Its home's whole pool plus, when the policy borrows, what every other live instance lends at most
    /// (its lending cap, or its whole pool when idle instances lend all, since the others are idle when it runs alone).</summary>
    public int MaxPagesPerRequest
    {
        get
        {
            long lendable = Policy.AllowsBorrowing ? _rm.Where(r => !r.IsFailed).Sum(r => (long)r.MaxLendPages) : 0;
            long best = 0;
            foreach (RManager r in _rm)
            {
                if (!r.IsFailed)
                    best = Math.Max(best, r.TotalPages + lendable - (Policy.AllowsBorrowing ? r.MaxLendPages : 0));
            }
            return (int)Math.Min(int.MaxValue, best);
        }
    }

    /// <summary>
    /// How a growth that must borrow splits its pages. False (default): the home's free pages first, then each creditor
    /// in the policy's order up to what it lends. True: the request's pages are balanced (water-filled) over the home and
    /// as few creditors, in the policy's order, as can hold them, so that no instance holds much more of the request than
    /// another. A request's decode attention runs in parallel on every instance holding its pages and waits for the
    /// largest part, so home-first growth leaves a long request's pace set by its home's (whole-pool) share, and the home
    /// with no room for its other requests; balancing halves that share for a request of two pools and keeps the parts,
    /// and the query/partial exchange each part costs per layer, as few as fit.
    /// </summary>
    public bool SpreadBorrowing { get; set; }

    /// <summary>Prepared moves committed so far, and the pages they moved.</summary>
    public long MovesCommitted { get; private set; }
    public long PagesMoved { get; private set; }

    /// <summary>Move reservations a destination refused (the move waits for a later plan).</summary>
    public long ReservationsRefused { get; private set; }

    /// <summary>The instance that holds a global page.</summary>
    public int InstanceOf(int page)
    {
        if ((uint)page >= (uint)TotalPages)
            throw new ArgumentOutOfRangeException(nameof(page), page, $"Pages are 0..{TotalPages - 1}.");
        return page / PagesPerInstance;
    }

    /// <summary>The request's home, or -1 when it is not placed.</summary>
    public int HomeOf(long requestId) => _requests.TryGetValue(requestId, out RequestState? s) ? s.Home : -1;

    /// <summary>Sends every rManager's pending heartbeat (a full one where the gManager asks for it).</summary>
    public void Heartbeat()
    {
        for (int i = 0; i < _rm.Length; i++)
        {
            if (GManager.NeedsFullHeartbeat(i))
                GManager.Apply(_rm[i].FullHeartbeat());
            if (_rm[i].HasChanges)
                GManager.Apply(_rm[i].TakeHeartbeat());
        }
    }

    /// <inheritdoc/>
    public int PlaceRequest(long requestId, int pages)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(pages);
        if (_requests.TryGetValue(requestId, out RequestState? existing))
            return existing.Home;
        Sync();
        int home = GManager.ChooseHome(pages);
        if (home < 0 || home >= _rm.Length || _rm[home].IsFailed)
            return -1;
        _rm[home].Register(requestId);
        _requests[requestId] = new RequestState(home);
        return home;
    }

    /// <inheritdoc/>
    public bool TryGrow(long requestId, int home, List<int> table, int pages)
    {
        ArgumentNullException.ThrowIfNull(table);
        CheckInstance(home, nameof(home));
        ArgumentOutOfRangeException.ThrowIfNegative(pages);
        RequestState? state = StateFor(requestId, home, table);
        int needed = pages - table.Count;
        if (needed <= 0)
            return true;
        RManager h = _rm[home];
        if (state is null || h.IsFailed)
            return false;
        int local = Math.Min(h.Free, needed);
        IReadOnlyList<int> creditors = needed > local && Policy.AllowsBorrowing ? Creditors(home) : [];
        int available = local;
        foreach (int c in creditors)
            available += _rm[c].LendablePages;
        if (available < needed)
            return false;
        int[]? shares = SpreadBorrowing && creditors.Count > 0 ? Balanced(requestId, home, creditors, needed) : null;
        if (shares is not null)
            local = shares[0];
        var locals = new List<int>(needed);
        h.TryAllocate(requestId, local, locals);
        foreach (int p in locals)
            table.Add(home * PagesPerInstance + p);
        int remaining = needed - local;
        for (int k = 0; k < creditors.Count; k++)
        {
            int c = creditors[k];
            if (remaining == 0)
                break;
            int n = Math.Min(remaining, shares is null ? _rm[c].LendablePages : shares[k + 1]);
            if (n == 0)
                continue;
            locals.Clear();
            LendDecision decision = _rm[c].Lend(requestId, home, home, n, locals);
            if (decision != LendDecision.Granted)
                throw new InvalidOperationException($"Instance {c} refused to lend {n} pages it reported lendable ({decision}).");
            h.NoteBorrowed(requestId, n);
            foreach (int p in locals)
                table.Add(c * PagesPerInstance + p);
            remaining -= n;
        }
        return true;
    }

    /// <summary>
    /// The pages each of the home (index 0) and <paramref name="creditors"/> (index k + 1) adds so that the request's
    /// holdings become as even as their room allows: over the shortest prefix of [home, creditors...] whose room covers
    /// <paramref name="needed"/>, the smallest level L with sum(clamp(L - held, 0, room)) >= needed, each raised to
    /// L - 1 and the rest given one page each in order. The caller has checked that the room covers the need.
    /// </summary>
    private int[] Balanced(long requestId, int home, IReadOnlyList<int> creditors, int needed)
    {
        int n = creditors.Count + 1;
        var held = new long[n];
        var room = new long[n];
        int used = 0;
        long covered = 0;
        while (used < n && covered < needed)
        {
            RManager r = _rm[used == 0 ? home : creditors[used - 1]];
            held[used] = r.BlocksOf(requestId);
            room[used] = used == 0 ? r.Free : r.LendablePages;
            covered += room[used];
            used++;
        }
        long Fill(long level)
        {
            long sum = 0;
            for (int i = 0; i < used; i++)
                sum += Math.Clamp(level - held[i], 0, room[i]);
            return sum;
        }
        long lo = 0, hi = 0;
        for (int i = 0; i < used; i++)
            hi = Math.Max(hi, held[i] + room[i]);
        while (lo < hi)
        {
            long mid = lo + (hi - lo) / 2;
            if (Fill(mid) >= needed)
                hi = mid;
            else
                lo = mid + 1;
        }
        var shares = new int[n];
        long given = 0;
        for (int i = 0; i < used; i++)
        {
            shares[i] = (int)Math.Clamp(lo - 1 - held[i], 0, room[i]);
            given += shares[i];
        }
        for (int i = 0; i < used && given < needed; i++)
        {
            if (shares[i] < room[i] && held[i] + shares[i] == lo - 1)
            {
                shares[i]++;
                given++;
            }
        }
        if (given != needed)
            throw new InvalidOperationException($"Balancing {needed} pages of request {requestId} gave {given}.");
        return shares;
    }

    /// <inheritdoc/>
    public int AvailableTo(long requestId, int home)
    {
        CheckInstance(home, nameof(home));
        if (_rm[home].IsFailed)
            return 0;
        int available = _rm[home].Free;
        if (Policy.AllowsBorrowing)
        {
            foreach (int c in Creditors(home))
                available += _rm[c].LendablePages;
        }
        return available;
    }

    /// <inheritdoc/>
    public void Release(long requestId, List<int> table)
    {
        ArgumentNullException.ThrowIfNull(table);
        _requests.TryGetValue(requestId, out RequestState? state);
        if (state?.Pending is { } pending)
            AbortMove(pending);
        int home = state?.Home ?? -1;
        foreach (int page in table)
        {
            if ((uint)page >= (uint)TotalPages)
                throw new InvalidOperationException($"Page {page} is released but is not allocated (the space has {TotalPages}).");
            int instance = page / PagesPerInstance;
            _rm[instance].Release(requestId, page % PagesPerInstance);
            if (home >= 0 && instance != home)
                _rm[home].NoteBorrowed(requestId, -1);
        }
        table.Clear();
        if (state is not null)
        {
            _rm[home].Unregister(requestId);
            _requests.Remove(requestId);
        }
    }

    /// <summary>The gManager's move plan (throttled) for the current placement and waiting demand.</summary>
    public IReadOnlyList<PageMove> PlanMoves(Demand demand = default)
    {
        Sync();
        return GManager.PlanMoves(demand);
    }

    /// <summary>
    /// Phase one of a move: picks up to <c>move.Pages</c> of the request's pages on <c>move.From</c>, oldest first
    /// (older KV migrates, the newest page stays where decode appends), and reserves as many on <c>move.To</c>
    /// through its rManager. Null when the move no longer applies (request gone, a move of it already pending, an
    /// instance failed, nothing movable) or the reservation is refused (it waits for the next plan). The caller
    /// copies <see cref="PreparedMove.Copies"/> and then commits or aborts; the page table is untouched until then.
    /// </summary>
    public PreparedMove? PrepareMove(PageMove move)
    {
        CheckInstance(move.From, nameof(move));
        CheckInstance(move.To, nameof(move));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(move.Pages, nameof(move));
        if (move.From == move.To)
            throw new ArgumentException($"Move of request {move.RequestId} has the same source and destination {move.From}.", nameof(move));
        if (!_requests.TryGetValue(move.RequestId, out RequestState? state) || state.Table is not { } table
            || state.Pending is not null || _rm[move.From].IsFailed || _rm[move.To].IsFailed
            || (!Policy.AllowsBorrowing && move.To != state.Home))
            return null;
        var indices = new List<int>(move.Pages);
        for (int j = 0; j < table.Count - 1 && indices.Count < move.Pages; j++)
        {
            if (table[j] / PagesPerInstance == move.From)
                indices.Add(j);
        }
        if (indices.Count == 0)
            return null;
        var locals = new List<int>(indices.Count);
        LendDecision decision = _rm[move.To].Reserve(move.RequestId, state.Home, indices.Count, locals);
        if (decision != LendDecision.Granted)
        {
            ReservationsRefused++;
            return null;
        }
        if (move.To != state.Home)
            _rm[state.Home].NoteBorrowed(move.RequestId, indices.Count);
        var copies = new PageCopy[indices.Count];
        for (int i = 0; i < copies.Length; i++)
            copies[i] = new PageCopy(table[indices[i]], move.To * PagesPerInstance + locals[i]);
        var prepared = new PreparedMove(move with { Pages = indices.Count }, state.Home, copies, [.. indices]);
        state.Pending = prepared;
        return prepared;
    }

    /// <summary>Phase two after the copy: the request's table takes the new pages and the old ones are freed. False
    /// (and the reservation freed) when the move was aborted meanwhile or one of its instances failed.</summary>
    public bool CommitMove(PreparedMove prepared)
    {
        ArgumentNullException.ThrowIfNull(prepared);
        if (!prepared.IsPending)
            return false;
        PageMove move = prepared.Move;
        if (!_requests.TryGetValue(move.RequestId, out RequestState? state) || state.Pending != prepared
            || _rm[move.From].IsFailed || _rm[move.To].IsFailed)
        {
            AbortMove(prepared);
            return false;
        }
        List<int> table = state.Table!;
        for (int i = 0; i < prepared.TableIndices.Length; i++)
        {
            if (table[prepared.TableIndices[i]] != prepared.Copies[i].OldPage)
                throw new InvalidOperationException(
                    $"Request {move.RequestId}'s page table changed under a pending move (entry {prepared.TableIndices[i]}).");
        }
        var newLocals = new int[prepared.Copies.Count];
        for (int i = 0; i < prepared.TableIndices.Length; i++)
        {
            PageCopy copy = prepared.Copies[i];
            table[prepared.TableIndices[i]] = copy.NewPage;
            _rm[move.From].Release(move.RequestId, copy.OldPage % PagesPerInstance);
            if (move.From != state.Home)
                _rm[state.Home].NoteBorrowed(move.RequestId, -1);
            newLocals[i] = copy.NewPage % PagesPerInstance;
        }
        _rm[move.To].CommitReserved(move.RequestId, newLocals);
        state.Pending = null;
        prepared.IsPending = false;
        MovesCommitted++;
        PagesMoved += newLocals.Length;
        return true;
    }

    /// <summary>Frees a prepared move's reservation; the request keeps its old pages. Idempotent.</summary>
    public void AbortMove(PreparedMove prepared)
    {
        ArgumentNullException.ThrowIfNull(prepared);
        if (!prepared.IsPending)
            return;
        PageMove move = prepared.Move;
        foreach (PageCopy copy in prepared.Copies)
        {
            _rm[move.To].Release(move.RequestId, copy.NewPage % PagesPerInstance);
            if (move.To != prepared.Home)
                _rm[prepared.Home].NoteBorrowed(move.RequestId, -1);
        }
        if (_requests.TryGetValue(move.RequestId, out RequestState? state) && state.Pending == prepared)
            state.Pending = null;
        prepared.IsPending = false;
    }

    /// <summary>
    /// Marks an instance lost: it never hands out a page again, moves into or out of it are aborted, and the gManager
    /// stops choosing it. Returns the requests that had KV pages there or were homed there, ascending: only those
    /// fail (the caller releases them); the others keep serving.
    /// </summary>
    public IReadOnlyList<long> MarkFailed(int instance)
    {
        CheckInstance(instance, nameof(instance));
        RManager rm = _rm[instance];
        rm.Fail();
        foreach (RequestState state in _requests.Values)
        {
            if (state.Pending is { } p && (p.Move.To == instance || p.Move.From == instance))
                AbortMove(p);
        }
        var lost = rm.Requests.Where(id => rm.BlocksOf(id) > 0 || rm.IsHome(id)).Order().ToList();
        GManager.MarkFailed(instance);
        Sync();
        return lost;
    }

    private void Sync()
    {
        if (HeartbeatEveryOperation)
            Heartbeat();
    }

    private IReadOnlyList<int> Creditors(int home)
    {
        Sync();
        var creditors = new List<int>();
        foreach (int c in GManager.CreditorsFor(home))
        {
            if (c != home && (uint)c < (uint)_rm.Length && !_rm[c].IsFailed && !creditors.Contains(c))
                creditors.Add(c);
        }
        return creditors;
    }

    private RequestState? StateFor(long requestId, int home, List<int> table)
    {
        if (!_requests.TryGetValue(requestId, out RequestState? state))
        {
            if (_rm[home].IsFailed)
                return null;
            _rm[home].Register(requestId);
            state = new RequestState(home);
            _requests[requestId] = state;
        }
        else if (state.Home != home)
        {
            throw new ArgumentException($"Request {requestId} is homed on instance {state.Home}, not {home}.", nameof(home));
        }
        if (state.Table is null)
            state.Table = table;
        else if (!ReferenceEquals(state.Table, table))
            throw new ArgumentException($"Request {requestId} already grows another page table.", nameof(table));
        return state;
    }

    private void CheckInstance(int instance, string paramName)
    {
        if ((uint)instance >= (uint)_rm.Length)
            throw new ArgumentOutOfRangeException(paramName, instance, $"Instances are 0..{_rm.Length - 1}.");
    }

    private sealed class RequestState(int home)
    {
        public int Home { get; } = home;
        public List<int>? Table { get; set; }
        public PreparedMove? Pending { get; set; }
    }
}
