namespace Infinite.Cluster;

/// <summary>
/// The paper's greedy debtor/creditor policy over a cost model. Debtors are live instances whose batch is below
/// <see cref="BorrowingOptions.DebtorMaxBatch"/> (smallest first); creditors are live instances whose memory
/// utilisation is below <see cref="BorrowingOptions.CreditorMaxUtilisation"/> (emptiest first). For each debtor it
/// takes its longest request, pairs it with the creditor with most free memory, evaluates moving k of the request's
/// home pages there for every feasible k, and applies the k that maximises the pair's modelled throughput; rounds
/// repeat until no move gains. Before that, pages borrowed by requests whose home has room again are planned back
/// when the model says locality pays (no exchange, no remote attention). New requests go to the least-loaded
/// instance with room; a request that outgrows its home borrows from the instances with most free pages.
/// </summary>
public sealed class BorrowingPolicy : IPlacementPolicy
{
    private readonly ICostModel _cost;

    /// <param name="cost">Step-time model the greedy step maximises throughput under (shared with the simulator).</param>
    /// <param name="options">Thresholds; defaults when null.</param>
    public BorrowingPolicy(ICostModel cost, BorrowingOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(cost);
        Options = options ?? new BorrowingOptions();
        Options.Validate();
        _cost = cost;
    }

    /// <summary>The thresholds in force (validated).</summary>
    public BorrowingOptions Options { get; }

    /// <inheritdoc/>
    public bool AllowsBorrowing => true;

    /// <summary>The least-loaded live instance with <paramref name="pages"/> free pages; failing that, the instance
    /// with most free pages if what the others may lend covers the rest; else -1.</summary>
    public int ChooseHome(IReadOnlyList<InstanceView> instances, int pages)
    {
        ArgumentNullException.ThrowIfNull(instances);
        ArgumentOutOfRangeException.ThrowIfNegative(pages);
        int home = StaticPolicy.LeastLoadedWithRoom(instances, pages);
        if (home >= 0)
            return home;
        int best = -1;
        long lendable = 0;
        foreach (InstanceView v in instances)
        {
            if (v.Failed)
                continue;
            lendable += v.LendablePages;
            if (best < 0 || v.FreePages > instances[best].FreePages)
                best = v.Instance;
        }
        if (best < 0)
            return -1;
        return instances[best].FreePages + lendable - instances[best].LendablePages >= pages ? best : -1;
    }

    /// <summary>Live instances other than the debtor that may lend, most free pages first; with
    /// <see cref="BorrowingOptions.BorrowOnlyFromCreditors"/> only those below
    /// <see cref="BorrowingOptions.CreditorMaxUtilisation"/>.</summary>
    public IReadOnlyList<int> ChooseCreditors(IReadOnlyList<InstanceView> instances, int debtor)
    {
        ArgumentNullException.ThrowIfNull(instances);
        var creditors = new List<int>();
        foreach (InstanceView v in instances)
        {
            if (!v.Failed && v.Instance != debtor && v.LendablePages > 0
                && (!Options.BorrowOnlyFromCreditors || v.Utilisation < Options.CreditorMaxUtilisation))
                creditors.Add(v.Instance);
        }
        creditors.Sort((a, b) => instances[a].FreePages != instances[b].FreePages
            ? instances[b].FreePages.CompareTo(instances[a].FreePages)
            : a.CompareTo(b));
        return creditors;
    }

    /// <inheritdoc/>
    public IReadOnlyList<PageMove> PlanMoves(ClusterView view)
    {
        ArgumentNullException.ThrowIfNull(view);
        var model = new ClusterModel(view, _cost, Options.ExchangeBytesPerRemotePart);
        var moves = new List<PageMove>();
        PlanReturns(model, moves);
        for (int round = 0; round < Options.MaxRounds; round++)
        {
            if (!GreedyRound(model, moves))
                break;
        }
        return moves;
    }

    /// <summary>Modelled throughput of instances <paramref name="from"/> and <paramref name="to"/> together after
    /// moving <paramref name="blocks"/> pages of a request between them (0: as they are). The quantity the greedy
    /// step maximises over k.</summary>
    public double PairThroughput(ClusterView view, long requestId, int from, int to, int blocks)
    {
        ArgumentNullException.ThrowIfNull(view);
        ArgumentOutOfRangeException.ThrowIfNegative(blocks);
        var model = new ClusterModel(view, _cost, Options.ExchangeBytesPerRemotePart);
        if (!model.RequestIds.Contains(requestId))
            throw new ArgumentException($"Request {requestId} is not in the view.", nameof(requestId));
        if ((uint)from >= (uint)model.Count)
            throw new ArgumentOutOfRangeException(nameof(from), from, "No such instance.");
        if ((uint)to >= (uint)model.Count)
            throw new ArgumentOutOfRangeException(nameof(to), to, "No such instance.");
        if (blocks > model.BlocksOn(requestId, from))
            throw new ArgumentOutOfRangeException(nameof(blocks), blocks, $"Request {requestId} has fewer pages on instance {from}.");
        return model.PairAfter(requestId, from, to, blocks, from, to);
    }

    private void PlanReturns(ClusterModel model, List<PageMove> moves)
    {
        foreach (long id in model.RequestIds.Order().ToList())
        {
            int home = model.HomeOf(id);
            if (model.Failed[home])
                continue;
            foreach ((int creditor, int blocks) in model.PartsOf(id).OrderBy(p => p.Instance).ToList())
            {
                if (creditor == home || model.Failed[creditor])
                    continue;
                int kMax = Math.Min(blocks, model.Free[home]);
                int k = BestK(model, id, creditor, home, kMax);
                if (k > 0)
                {
                    model.Apply(id, creditor, home, k);
                    Add(moves, new PageMove(id, creditor, home, k));
                }
            }
        }
    }

    private bool GreedyRound(ClusterModel model, List<PageMove> moves)
    {
        var debtors = Enumerable.Range(0, model.Count)
            .Where(i => !model.Failed[i] && model.Running[i] < Options.DebtorMaxBatch)
            .OrderBy(i => model.Running[i]).ThenBy(i => i).ToList();
        bool moved = false;
        foreach (int debtor in debtors)
        {
            if (LongestMovable(model, debtor) is not long request)
                continue;
            int creditor = Enumerable.Range(0, model.Count)
                .Where(i => i != debtor && !model.Failed[i] && model.Lendable[i] > 0
                    && model.Utilisation(i) < Options.CreditorMaxUtilisation)
                .OrderByDescending(i => model.Free[i]).ThenBy(i => i)
                .DefaultIfEmpty(-1).First();
            if (creditor < 0)
                break;
            // Keep the newest page at home: it is where decode appends.
            int kMax = Math.Min(model.BlocksOn(request, debtor) - 1, Math.Min(model.Lendable[creditor], model.Free[creditor]));
            int k = BestK(model, request, debtor, creditor, kMax);
            if (k > 0)
            {
                model.Apply(request, debtor, creditor, k);
                Add(moves, new PageMove(request, debtor, creditor, k));
                moved = true;
            }
        }
        return moved;
    }

    /// <summary>The debtor's longest request (most pages in all) that has at least two pages at home; null if none.</summary>
    private static long? LongestMovable(ClusterModel model, int debtor)
    {
        long? best = null;
        int bestBlocks = -1;
        foreach (long id in model.HomedOn(debtor).Order())
        {
            if (model.BlocksOn(id, debtor) < 2)
                continue;
            int total = model.TotalBlocks(id);
            if (total > bestBlocks)
            {
                best = id;
                bestBlocks = total;
            }
        }
        return best;
    }

    /// <summary>The k in 0..kMax (smallest on ties) that maximises the pair's throughput, or 0 when the best does not
    /// beat k = 0 by the minimum relative gain. Every k is tried up to <see cref="BorrowingOptions.ExhaustiveSearchLimit"/>;
    /// beyond, an even grid of that many points and then every k within one grid step of the grid's best, so a plan
    /// over pools of many thousands of pages stays cheap enough to run every step.</summary>
    private int BestK(ClusterModel model, long id, int from, int to, int kMax)
    {
        if (kMax <= 0)
            return 0;
        double baseline = model.Throughput(from) + model.Throughput(to);
        double best = baseline;
        int bestK = 0;
        void Try(int k)
        {
            double value = model.PairAfter(id, from, to, k, from, to);
            if (value > best || (value == best && k < bestK))
            {
                best = value;
                bestK = k;
            }
        }
        int limit = Options.ExhaustiveSearchLimit;
        if (kMax <= limit)
        {
            for (int k = 1; k <= kMax; k++)
                Try(k);
        }
        else
        {
            int step = (kMax + limit - 1) / limit;
            for (int k = step; k < kMax; k += step)
                Try(k);
            Try(kMax);
            int center = bestK;
            for (int k = Math.Max(1, center - step + 1); k <= Math.Min(kMax, center + step - 1); k++)
                Try(k);
        }
        return best > baseline * (1 + Options.MinRelativeGain) ? bestK : 0;
    }

    private static void Add(List<PageMove> moves, PageMove move)
    {
        int i = moves.FindIndex(m => m.RequestId == move.RequestId && m.From == move.From && m.To == move.To);
        if (i >= 0)
            moves[i] = moves[i] with { Pages = moves[i].Pages + move.Pages };
        else
            moves.Add(move);
    }
}
