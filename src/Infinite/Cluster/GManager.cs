namespace Infinite.Cluster;

/// <summary>
/// The global manager: a placement map (request -> instance -> pages) and each instance's free pages and load, built
/// only from rManager heartbeats, so a restarted gManager rebuilds itself from one round of full heartbeats while the
/// instances keep serving. It answers where a new request lives, whom a debtor borrows from, and which pages to
/// migrate, all through a pluggable <see cref="IPlacementPolicy"/>; migrations are throttled so they hide behind
/// inference. Its view may be stale: the rManagers stay the authority (a move reserves on the creditor first, and a
/// refused reservation waits for the next plan). Not thread-safe.
/// </summary>
public sealed class GManager
{
    private readonly Dictionary<long, Dictionary<int, HeartbeatEntry>> _map = [];
    private readonly InstanceView[] _instances;
    private readonly long[] _sequence;
    private readonly bool[] _needsFull;
    private readonly int _budgetCapTokens;
    private int _budgetTokens;

    /// <param name="instances">Instances in the cluster.</param>
    /// <param name="pagesPerInstance">Pages of each pool (the view before an instance's first heartbeat).</param>
    /// <param name="pageSize">Tokens per page (the cost model works in tokens).</param>
    /// <param name="policy">Placement decisions.</param>
    /// <param name="options">Move throttle; defaults when null.</param>
    public GManager(int instances, int pagesPerInstance, int pageSize, IPlacementPolicy policy, GManagerOptions? options = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(instances);
        ArgumentOutOfRangeException.ThrowIfNegative(pagesPerInstance);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(pageSize);
        ArgumentNullException.ThrowIfNull(policy);
        options ??= new GManagerOptions();
        ArgumentOutOfRangeException.ThrowIfNegative(options.MaxMoveTokensPerPlan, nameof(options));
        Policy = policy;
        PageSize = pageSize;
        MaxMoveTokensPerPlan = options.MaxMoveTokensPerPlan;
        _budgetCapTokens = Math.Max(pageSize, MaxMoveTokensPerPlan);
        _instances = new InstanceView[instances];
        _sequence = new long[instances];
        _needsFull = new bool[instances];
        for (int i = 0; i < instances; i++)
        {
            _instances[i] = new InstanceView(i, pagesPerInstance, pagesPerInstance, 0, 0, 0, false);
            _needsFull[i] = true;
        }
    }

    /// <summary>The strategy behind every decision.</summary>
    public IPlacementPolicy Policy { get; }
    /// <summary>Tokens per page.</summary>
    public int PageSize { get; }
    /// <summary>Migration budget per plan, in KV tokens.</summary>
    public int MaxMoveTokensPerPlan { get; }

    /// <summary>Each instance as its last heartbeat described it.</summary>
    public IReadOnlyList<InstanceView> Instances => _instances;

    /// <summary>True until the instance's first full heartbeat, and again after a missed delta heartbeat.</summary>
    public bool NeedsFullHeartbeat(int instance) => _needsFull[CheckInstance(instance)];

    /// <summary>
    /// Applies a heartbeat: a full one replaces everything known of its instance; a delta one updates the entries it
    /// carries, and is ignored (the instance then needs a full heartbeat) when its sequence number shows one was
    /// missed. Returns whether it was applied.
    /// </summary>
    public bool Apply(Heartbeat heartbeat)
    {
        ArgumentNullException.ThrowIfNull(heartbeat);
        int instance = CheckInstance(heartbeat.Instance);
        if (heartbeat.State.Instance != instance)
            throw new ArgumentException($"Heartbeat of instance {instance} carries the state of {heartbeat.State.Instance}.", nameof(heartbeat));
        foreach (HeartbeatEntry e in heartbeat.Entries)
        {
            if (e.Instance != instance)
                throw new ArgumentException($"Heartbeat of instance {instance} carries an entry of {e.Instance}.", nameof(heartbeat));
        }
        if (heartbeat.Full)
        {
            foreach (long id in _map.Keys.ToList())
                Set(new HeartbeatEntry(id, instance, 0, false));
        }
        else if (_needsFull[instance] || heartbeat.Sequence != _sequence[instance] + 1)
        {
            _needsFull[instance] = true;
            return false;
        }
        foreach (HeartbeatEntry e in heartbeat.Entries)
            Set(e);
        _instances[instance] = heartbeat.State with { Failed = heartbeat.State.Failed || _instances[instance].Failed };
        _sequence[instance] = heartbeat.Sequence;
        _needsFull[instance] = false;
        return true;
    }

    /// <summary>Marks an instance lost (no heartbeat needed: a dead instance sends none). It is never chosen again.</summary>
    public void MarkFailed(int instance)
    {
        CheckInstance(instance);
        _instances[instance] = _instances[instance] with { Failed = true, LendablePages = 0 };
    }

    /// <summary>Every placement entry, ordered by request then instance (for comparing two gManagers).</summary>
    public IReadOnlyList<HeartbeatEntry> Entries()
    {
        var entries = _map.Values.SelectMany(m => m.Values).ToList();
        entries.Sort(RManager.CompareEntries);
        return entries;
    }

    /// <summary>The request's home instance, or -1 when unknown.</summary>
    public int HomeOf(long requestId)
    {
        if (_map.TryGetValue(requestId, out Dictionary<int, HeartbeatEntry>? m))
        {
            foreach (HeartbeatEntry e in m.Values)
            {
                if (e.Local)
                    return e.Instance;
            }
        }
        return -1;
    }

    /// <summary>Pages of the request per instance.</summary>
    public IReadOnlyDictionary<int, int> BlocksOf(long requestId) =>
        _map.TryGetValue(requestId, out Dictionary<int, HeartbeatEntry>? m)
            ? m.Values.Where(e => e.Blocks > 0).ToDictionary(e => e.Instance, e => e.Blocks)
            : new Dictionary<int, int>();

    /// <summary>A snapshot for policies: instances and the requests whose home is known.</summary>
    public ClusterView View(Demand demand = default)
    {
        var requests = new List<RequestPlacement>(_map.Count);
        foreach ((long id, Dictionary<int, HeartbeatEntry> m) in _map.OrderBy(kv => kv.Key))
        {
            int home = HomeOf(id);
            if (home >= 0)
                requests.Add(new RequestPlacement(id, home, m.Values.ToDictionary(e => e.Instance, e => e.Blocks)));
        }
        return new ClusterView(PageSize, _instances.ToArray(), requests, demand);
    }

    /// <summary>The home the policy picks for a new request of <paramref name="pages"/> pages, or -1.</summary>
    public int ChooseHome(int pages) => Policy.ChooseHome(_instances, pages);

    /// <summary>Instances a request homed on <paramref name="debtor"/> should borrow from, best first.</summary>
    public IReadOnlyList<int> CreditorsFor(int debtor) => Policy.ChooseCreditors(_instances, CheckInstance(debtor));

    /// <summary>
    /// The policy's moves, cut to this plan's migration budget (<see cref="GManagerOptions.MaxMoveTokensPerPlan"/>,
    /// accumulated across plans while pages are larger than it). What is cut is planned again later if it still pays.
    /// </summary>
    public IReadOnlyList<PageMove> PlanMoves(Demand demand = default)
    {
        _budgetTokens = Math.Min(_budgetCapTokens, _budgetTokens + MaxMoveTokensPerPlan);
        int budgetPages = _budgetTokens / PageSize;
        if (budgetPages == 0)
            return [];
        var moves = new List<PageMove>();
        foreach (PageMove move in Policy.PlanMoves(View(demand)))
        {
            if (budgetPages == 0)
                break;
            if (move.Pages <= 0 || move.From == move.To)
                continue;
            int pages = Math.Min(move.Pages, budgetPages);
            moves.Add(move with { Pages = pages });
            budgetPages -= pages;
            _budgetTokens -= pages * PageSize;
        }
        return moves;
    }

    private void Set(HeartbeatEntry e)
    {
        if (!_map.TryGetValue(e.RequestId, out Dictionary<int, HeartbeatEntry>? m))
        {
            if (e.Blocks == 0 && !e.Local)
                return;
            m = [];
            _map[e.RequestId] = m;
        }
        if (e.Blocks == 0 && !e.Local)
        {
            m.Remove(e.Instance);
            if (m.Count == 0)
                _map.Remove(e.RequestId);
        }
        else
        {
            m[e.Instance] = e;
        }
    }

    private int CheckInstance(int instance)
    {
        if ((uint)instance >= (uint)_instances.Length)
            throw new ArgumentOutOfRangeException(nameof(instance), instance, $"Instances are 0..{_instances.Length - 1}.");
        return instance;
    }
}
