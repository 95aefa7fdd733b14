namespace Infinite.Cluster;

/// <summary>
/// A mutable copy of a <see cref="ClusterView"/> on which the greedy policy tries moves and reads the modelled
/// throughput of each instance: its batch (requests homed there, plus the waiting requests its free memory could
/// admit) over the cost model's step time. Pages count as full pages of tokens.
/// </summary>
internal sealed class ClusterModel
{
    private readonly ICostModel _cost;
    private readonly long _bytesPerPart;
    private readonly int _pageSize;
    private readonly Demand _demand;
    private readonly Dictionary<long, Dictionary<int, int>> _blocks = [];
    private readonly Dictionary<long, int> _home = [];
    private readonly HashSet<long>[] _on;
    private readonly HashSet<long>[] _homed;

    public ClusterModel(ClusterView view, ICostModel cost, long bytesPerPart)
    {
        _cost = cost;
        _bytesPerPart = bytesPerPart;
        _pageSize = view.PageSize;
        _demand = view.Demand;
        int n = view.Instances.Count;
        Running = new int[n];
        Free = new int[n];
        Lendable = new int[n];
        Total = new int[n];
        Failed = new bool[n];
        _on = new HashSet<long>[n];
        _homed = new HashSet<long>[n];
        for (int i = 0; i < n; i++)
        {
            InstanceView v = view.Instances[i];
            Running[i] = v.RunningRequests;
            Free[i] = v.FreePages;
            Lendable[i] = v.LendablePages;
            Total[i] = v.TotalPages;
            Failed[i] = v.Failed;
            _on[i] = [];
            _homed[i] = [];
        }
        foreach (RequestPlacement r in view.Requests)
        {
            var blocks = new Dictionary<int, int>();
            foreach ((int instance, int count) in r.Blocks)
            {
                if (count > 0)
                {
                    blocks[instance] = count;
                    _on[instance].Add(r.RequestId);
                }
            }
            _blocks[r.RequestId] = blocks;
            _home[r.RequestId] = r.Home;
            _homed[r.Home].Add(r.RequestId);
        }
    }

    public int[] Running { get; }
    public int[] Free { get; }
    public int[] Lendable { get; }
    public int[] Total { get; }
    public bool[] Failed { get; }
    public int Count => Running.Length;

    public IEnumerable<long> RequestIds => _home.Keys;
    public int HomeOf(long id) => _home[id];
    public int BlocksOn(long id, int instance) => _blocks[id].GetValueOrDefault(instance);
    public int TotalBlocks(long id) => _blocks[id].Values.Sum();
    public IEnumerable<long> HomedOn(int instance) => _homed[instance];
    public IEnumerable<(int Instance, int Blocks)> PartsOf(long id) => _blocks[id].Select(kv => (kv.Key, kv.Value));

    public double Utilisation(int i) => Failed[i] || Total[i] == 0 ? 1.0 : 1.0 - (double)Free[i] / Total[i];

    /// <summary>Requests of the waiting demand instance i could admit with its free pages.</summary>
    public int Admissions(int i) =>
        _demand.Requests > 0 && _demand.BlocksPerRequest > 0 ? Math.Min(_demand.Requests, Free[i] / _demand.BlocksPerRequest) : 0;

    public InstanceLoad Load(int i)
    {
        if (Failed[i])
            return InstanceLoad.Idle;
        int admitted = Admissions(i);
        var kv = new List<int>(_on[i].Count + admitted);
        int parts = 0;
        foreach (long id in _on[i])
        {
            kv.Add(_blocks[id][i] * _pageSize);
            if (_home[id] != i)
                parts++;
        }
        foreach (long id in _homed[i])
        {
            foreach (int instance in _blocks[id].Keys)
            {
                if (instance != i)
                    parts++;
            }
        }
        for (int a = 0; a < admitted; a++)
            kv.Add(_demand.BlocksPerRequest * _pageSize);
        return new InstanceLoad(Running[i] + admitted, kv, parts, parts * _bytesPerPart);
    }

    /// <summary>Modelled tokens per second of instance i.</summary>
    public double Throughput(int i)
    {
        InstanceLoad load = Load(i);
        if (load.BatchTokens == 0)
            return 0;
        double seconds = _cost.StepSeconds(load);
        return seconds > 0 ? load.BatchTokens / seconds : 0;
    }

    /// <summary>Moves k pages of a request (reversibly: pages and free memory only).</summary>
    public void Shift(long id, int from, int to, int k)
    {
        if (k == 0)
            return;
        Dictionary<int, int> blocks = _blocks[id];
        int left = blocks.GetValueOrDefault(from) - k;
        if (left < 0)
            throw new InvalidOperationException($"Request {id} has fewer than {k} pages on instance {from}.");
        if (left == 0)
        {
            blocks.Remove(from);
            _on[from].Remove(id);
        }
        else
        {
            blocks[from] = left;
        }
        blocks[to] = blocks.GetValueOrDefault(to) + k;
        _on[to].Add(id);
        Free[from] += k;
        Free[to] -= k;
    }

    /// <summary>Modelled throughput of instances a and b after moving k pages of a request.</summary>
    public double PairAfter(long id, int from, int to, int k, int a, int b)
    {
        Shift(id, from, to, k);
        double value = Throughput(a) + Throughput(b);
        Shift(id, to, from, k);
        return value;
    }

    /// <summary>Applies a move for good, keeping the lendable estimates in step.</summary>
    public void Apply(long id, int from, int to, int k)
    {
        Shift(id, from, to, k);
        int home = _home[id];
        if (to != home)
            Lendable[to] = Math.Max(0, Lendable[to] - k);
        else
            Lendable[to] = Math.Min(Lendable[to], Free[to]);
        if (from != home)
            Lendable[from] += k;
    }
}
