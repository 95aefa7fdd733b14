using Infinite.Cluster;

namespace Infinite.Tests.Cluster;

/// <summary>Idle lenders, balanced borrowing and who counts as a creditor.</summary>
public sealed class BorrowingPlacementTests
{
    private static ClusterPageSpace Space(bool spread, bool idleLendsAll, int instances = 4, int pages = 8) =>
        new(instances, pages, pageSize: 4, new BorrowingPolicy(new LinearCostModel(), new BorrowingOptions { BorrowOnlyFromCreditors = true }),
            new RManagerOptions { LendAllWhenIdle = idleLendsAll }) { SpreadBorrowing = spread };

    private static int[] PagesPerInstance(ClusterPageSpace space, List<int> table) =>
        [.. Enumerable.Range(0, space.Instances).Select(i => table.Count(p => space.InstanceOf(p) == i))];

    [Fact]
    public void An_idle_instance_lends_all_its_free_pages_but_the_cap_returns_with_its_own_demand()
    {
        var rm = new RManager(1, 10, new RManagerOptions { LendAllWhenIdle = true });
        var pages = new List<int>();
        Assert.True(rm.IsIdleLender);
        Assert.Equal(10, rm.LendablePages);
        Assert.Equal(LendDecision.Granted, rm.Lend(100, requester: 0, home: 0, 7, pages)); // over the cap of 5

        rm.WaitingRequests = 1; // a request waits for this instance: the cap protects it
        Assert.Equal(0, rm.LendablePages);
        Assert.Equal(LendDecision.CapReached, rm.Lend(101, requester: 2, home: 2, 1, pages));
        rm.WaitingRequests = 0;
        Assert.Equal(3, rm.LendablePages);

        rm.Register(7); // now one runs here: the cap protects it
        Assert.False(rm.IsIdleLender);
        Assert.Equal(0, rm.LendablePages);
        Assert.Equal(LendDecision.CapReached, rm.Lend(101, requester: 2, home: 2, 1, pages));
        Assert.True(rm.TryAllocate(7, 3, pages)); // its own request gets what is left

        var strict = new RManager(1, 10);
        Assert.False(strict.IsIdleLender);
        Assert.Equal(5, strict.LendablePages);
    }

    [Fact]
    public void The_largest_request_is_the_whole_cluster_when_idle_instances_lend_all()
    {
        Assert.Equal(8 + 3 * 4, Space(spread: false, idleLendsAll: false).MaxPagesPerRequest);
        ClusterPageSpace space = Space(spread: false, idleLendsAll: true);
        Assert.Equal(32, space.MaxPagesPerRequest);
        int home = space.PlaceRequest(1, 32);
        var table = new List<int>();
        Assert.True(space.TryGrow(1, home, table, 32));
        Assert.Equal([8, 8, 8, 8], PagesPerInstance(space, table));
        ClusterAccounts.AssertBalanced(space, new Dictionary<long, List<int>> { [1] = table });
    }

    [Fact]
    public void Home_first_fills_the_home_and_spread_balances_over_the_fewest_instances_that_hold_the_request()
    {
        ClusterPageSpace homeFirst = Space(spread: false, idleLendsAll: true);
        var a = new List<int>();
        Assert.True(homeFirst.TryGrow(1, 0, a, 12));
        Assert.Equal([8, 4, 0, 0], PagesPerInstance(homeFirst, a));

        ClusterPageSpace spread = Space(spread: true, idleLendsAll: true);
        var b = new List<int>();
        Assert.True(spread.TryGrow(1, 0, b, 12)); // home and one creditor hold 16: 6 each
        Assert.Equal([6, 6, 0, 0], PagesPerInstance(spread, b));
        Assert.True(spread.TryGrow(1, 0, b, 13)); // the home has room: growth stays local
        Assert.Equal([7, 6, 0, 0], PagesPerInstance(spread, b));

        var c = new List<int>();
        Assert.True(spread.TryGrow(2, 2, c, 11)); // home 2 has 8 free; the only creditor is 3 (0 and 1 are over 70% used)
        Assert.Equal([0, 0, 6, 5], PagesPerInstance(spread, c));
        ClusterAccounts.AssertBalanced(spread, new Dictionary<long, List<int>> { [1] = b, [2] = c });

        // Levels: 20 pages over home 0 and creditors 1, 2 (8 pages each) is 7, 7, 6.
        ClusterPageSpace wide = Space(spread: true, idleLendsAll: true);
        var d = new List<int>();
        Assert.True(wide.TryGrow(1, 0, d, 20));
        Assert.Equal([7, 7, 6, 0], PagesPerInstance(wide, d));
        wide.Release(1, d);
        Assert.Equal(32, wide.FreePages);
    }

    [Fact]
    public void A_nearly_full_instance_is_no_creditor()
    {
        InstanceView[] instances =
        [
            new(0, 10, 1, 1, 3, 3, false), // 90% used: lendable, but no creditor
            new(1, 10, 4, 4, 1, 1, false), // 60%
            new(2, 10, 2, 2, 1, 1, false), // 80%
            new(3, 10, 9, 5, 0, 0, false),
        ];
        var policy = new BorrowingPolicy(new LinearCostModel(), new BorrowingOptions { BorrowOnlyFromCreditors = true });
        Assert.Equal([3, 1], policy.ChooseCreditors(instances, 2));
        Assert.Equal([3, 1], policy.ChooseCreditors(instances, 0));
        var loose = new BorrowingPolicy(new LinearCostModel(), new BorrowingOptions { BorrowOnlyFromCreditors = true, CreditorMaxUtilisation = 1.0 });
        Assert.Equal([3, 1, 0], loose.ChooseCreditors(instances, 2));
        Assert.Equal([3, 1, 0], new BorrowingPolicy(new LinearCostModel()).ChooseCreditors(instances, 2)); // the default

    }
}
