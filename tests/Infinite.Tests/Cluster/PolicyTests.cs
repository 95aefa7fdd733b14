using Infinite.Cluster;

namespace Infinite.Tests.Cluster;

public sealed class PolicyTests
{
    /// <summary>Builds a view from per-instance batches and request placements (pages of 100 per instance, lending
    /// cap 0.5 and nothing lent before the plan unless placements say otherwise).</summary>
    private static ClusterView View(int pageSize, int pagesPerInstance, int[] running,
        (long Id, int Home, (int Instance, int Blocks)[] Parts)[] requests, Demand demand = default)
    {
        int n = running.Length;
        var used = new int[n];
        var lent = new int[n];
        foreach (var r in requests)
        {
            foreach (var (instance, blocks) in r.Parts)
            {
                used[instance] += blocks;
                if (instance != r.Home)
                    lent[instance] += blocks;
            }
        }
        var instances = Enumerable.Range(0, n).Select(i => new InstanceView(i, pagesPerInstance, pagesPerInstance - used[i],
            Math.Max(0, Math.Min(pagesPerInstance - used[i], pagesPerInstance / 2 - lent[i])), running[i], running[i], false)).ToArray();
        var placements = requests.Select(r => new RequestPlacement(r.Id, r.Home,
            r.Parts.ToDictionary(p => p.Instance, p => p.Blocks))).ToArray();
        return new ClusterView(pageSize, instances, placements, demand);
    }

    /// <summary>Requests of one page each homed on an instance, to give it a batch.</summary>
    private static IEnumerable<(long, int, (int, int)[])> Small(long firstId, int home, int count) =>
        Enumerable.Range(0, count).Select(i => (firstId + i, home, new[] { (home, 1) }));

    private static int BruteForceBestK(BorrowingPolicy policy, ClusterView view, long id, int from, int to, int kMax)
    {
        int best = 0;
        double bestValue = policy.PairThroughput(view, id, from, to, 0);
        for (int k = 1; k <= kMax; k++)
        {
            double v = policy.PairThroughput(view, id, from, to, k);
            if (v > bestValue)
            {
                bestValue = v;
                best = k;
            }
        }
        return best;
    }

    [Fact]
    public void Greedy_PairsTheSmallestBatchDebtorWithTheEmptiestCreditor_AtTheBestK()
    {
        // Instance 0 (batch 2) and 1 (batch 4) are memory-bound debtors; 3 (20 pages used) and 2 (40 used) are
        // creditors, 3 the emptiest. Five waiting requests of 5 pages each fill whatever memory a move frees.
        var requests = new List<(long, int, (int, int)[])>
        {
            (1, 0, [(0, 80)]), (2, 0, [(0, 15)]),
            (3, 1, [(1, 60)]), (4, 1, [(1, 10)]), (5, 1, [(1, 10)]), (6, 1, [(1, 10)]),
        };
        requests.AddRange(Small(100, 2, 40));
        requests.AddRange(Small(200, 3, 20));
        var demand = new Demand(5, 5);
        ClusterView view = View(16, 100, [2, 4, 40, 20], [.. requests], demand);
        var policy = new BorrowingPolicy(new LinearCostModel(), new BorrowingOptions { DebtorMaxBatch = 8 });

        IReadOnlyList<PageMove> moves = policy.PlanMoves(view);

        Assert.NotEmpty(moves);
        PageMove first = moves[0];
        Assert.Equal((1L, 0, 3), (first.RequestId, first.From, first.To));
        int kMax = Math.Min(80 - 1, Math.Min(view.Instances[3].LendablePages, view.Instances[3].FreePages));
        Assert.Equal(BruteForceBestK(policy, view, 1, 0, 3, kMax), first.Pages);
        Assert.True(policy.PairThroughput(view, 1, 0, 3, first.Pages) > policy.PairThroughput(view, 1, 0, 3, 0));

        // The second debtor takes its longest request to whichever creditor is emptiest after the first move.
        PageMove second = moves.Single(m => m.From == 1);
        Assert.Equal(3L, second.RequestId);
        int expectedCreditor = 80 - first.Pages > 60 ? 3 : 2;
        Assert.Equal(expectedCreditor, second.To);
        requests[0] = (1, 0, [(0, 80 - first.Pages), (3, first.Pages)]);
        ClusterView after = View(16, 100, [2, 4, 40, 20], [.. requests], demand);
        int kMax2 = Math.Min(59, Math.Min(after.Instances[expectedCreditor].LendablePages, after.Instances[expectedCreditor].FreePages));
        Assert.Equal(BruteForceBestK(policy, after, 3, 1, expectedCreditor, kMax2), second.Pages);
    }

    [Fact]
    public void Greedy_MovesAttentionOfALongRequestFromABusyDebtorToAnIdleCreditor_WithoutDemand()
    {
        // 1024-token pages: request 1 holds 60K tokens, so attention dominates the step of instance 0, which serves
        // 30 requests; instance 1 serves one. Moving attention trades a little of 1's throughput for much of 0's.
        var requests = new List<(long, int, (int, int)[])> { (1, 0, [(0, 60)]) };
        requests.AddRange(Small(10, 0, 29));
        requests.AddRange(Small(100, 1, 1));
        ClusterView view = View(1024, 100, [30, 1], [.. requests]);
        var policy = new BorrowingPolicy(new LinearCostModel());

        PageMove move = Assert.Single(policy.PlanMoves(view));

        Assert.Equal((1L, 0, 1), (move.RequestId, move.From, move.To));
        Assert.Equal(BruteForceBestK(policy, view, 1, 0, 1, 50), move.Pages);
        Assert.InRange(move.Pages, 1, 50);

        // The coarse-to-fine search over large ranges finds the same k on this smooth (unimodal) pair.
        var coarse = new BorrowingPolicy(new LinearCostModel(), new BorrowingOptions { ExhaustiveSearchLimit = 8 });
        Assert.Equal(move, Assert.Single(coarse.PlanMoves(view)));

        // With equal batches the sum of throughputs falls when attention is spread (b/T is convex in T): no move.
        var even = new List<(long, int, (int, int)[])> { (1, 0, [(0, 60)]) };
        even.AddRange(Small(10, 0, 3));
        even.AddRange(Small(20, 1, 4));
        Assert.Empty(policy.PlanMoves(View(1024, 100, [4, 4], [.. even])));
    }

    [Fact]
    public void Greedy_DoesNothingWhenNoMoveGains()
    {
        var requests = new List<(long, int, (int, int)[])>();
        requests.AddRange(Small(0, 0, 4));
        requests.AddRange(Small(10, 1, 4));
        var policy = new BorrowingPolicy(new LinearCostModel());
        Assert.Empty(policy.PlanMoves(View(16, 100, [4, 4], [.. requests])));
    }

    [Fact]
    public void Greedy_PlansBorrowedPagesBackHome_WhenHomeHasRoomAgain()
    {
        // Request 1 borrowed 10 pages on instance 1; its home now has plenty of room.
        var requests = new List<(long, int, (int, int)[])> { (1, 0, [(0, 5), (1, 10)]) };
        requests.AddRange(Small(20, 1, 8));
        var policy = new BorrowingPolicy(new LinearCostModel());

        IReadOnlyList<PageMove> moves = policy.PlanMoves(View(16, 100, [1, 8], [.. requests]));

        Assert.Contains(new PageMove(1, 1, 0, 10), moves);
    }

    [Fact]
    public void ChooseHome_LeastLoadedWithRoom_ThenBorrowing()
    {
        InstanceView[] instances =
        [
            new(0, 10, 8, 5, 3, 3, false),
            new(1, 10, 4, 4, 1, 1, false),
            new(2, 10, 9, 5, 1, 1, true), // failed: never chosen
            new(3, 10, 6, 5, 1, 1, false),
        ];
        var borrowing = new BorrowingPolicy(new LinearCostModel());
        var fixedPolicy = new StaticPolicy();

        Assert.Equal(3, borrowing.ChooseHome(instances, 5)); // 1 and 3 least loaded; only 3 has room
        Assert.Equal(3, borrowing.ChooseHome(instances, 4)); // 1 and 3 tie on load: more free pages wins
        Assert.Equal(0, borrowing.ChooseHome(instances, 8));
        Assert.Equal(0, borrowing.ChooseHome(instances, 17)); // 8 at home + 4 + 5 lendable
        Assert.Equal(-1, borrowing.ChooseHome(instances, 18));
        Assert.Equal(-1, fixedPolicy.ChooseHome(instances, 9));
        Assert.Equal([0, 1], borrowing.ChooseCreditors(instances, 3));
        Assert.Empty(fixedPolicy.ChooseCreditors(instances, 3));
        Assert.Empty(fixedPolicy.PlanMoves(new ClusterView(16, instances, [])));
    }

    [Fact]
    public void LinearCostModel_BatchIsCheaperPerToken_AttentionGrowsWithContext()
    {
        var model = new LinearCostModel();
        double one = model.StepSeconds(new InstanceLoad(1, [100], 0, 0));
        double many = model.StepSeconds(new InstanceLoad(64, Enumerable.Repeat(100, 64).ToList(), 0, 0));
        Assert.True(many / 64 < one / 4, "per-token time falls with the batch");
        double longer = model.StepSeconds(new InstanceLoad(1, [100_000], 0, 0));
        Assert.Equal(99_900 * model.AttentionSecondsPerKvToken, longer - one, 9);
        double remote = model.StepSeconds(new InstanceLoad(1, [100], 2, 1_000_000));
        Assert.Equal(2 * model.ExchangeLatencySeconds + 1e6 / model.ExchangeBytesPerSecond, remote - one, 12);
        Assert.Equal(0, model.StepSeconds(InstanceLoad.Idle));
        Assert.Equal(0.5, model.BatchEfficiency((int)model.HalfEfficiencyBatch), 12);
    }
}
