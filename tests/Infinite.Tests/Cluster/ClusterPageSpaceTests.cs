using Infinite.Cluster;

namespace Infinite.Tests.Cluster;

public sealed class ClusterPageSpaceTests
{
    private static ClusterPageSpace Borrowing(int instances = 4, int pages = 8, GManagerOptions? g = null) =>
        new(instances, pages, pageSize: 4, new BorrowingPolicy(new LinearCostModel()), gManagerOptions: g);

    [Fact]
    public void StaticPolicy_RejectsWhatDoesNotFitOneInstance_BorrowingServesIt()
    {
        var fixedSpace = new ClusterPageSpace(4, 8, 4, new StaticPolicy());
        Assert.Equal(8, fixedSpace.MaxPagesPerRequest);
        Assert.Equal(-1, fixedSpace.PlaceRequest(1, 12));
        int home = fixedSpace.PlaceRequest(1, 8);
        var table = new List<int>();
        Assert.True(fixedSpace.TryGrow(1, home, table, 8));
        Assert.False(fixedSpace.TryGrow(1, home, table, 9));
        Assert.Equal(8, table.Count);
        Assert.All(table, p => Assert.Equal(home, p / 8));

        ClusterPageSpace space = Borrowing();
        Assert.Equal(8 + 3 * 4, space.MaxPagesPerRequest);
        home = space.PlaceRequest(1, 12);
        Assert.True(home >= 0);
        table = [];
        Assert.True(space.TryGrow(1, home, table, 12));
        Assert.All(table.Take(8), p => Assert.Equal(home, p / 8)); // local pages first
        Assert.True(table.Skip(8).Select(p => p / 8).All(i => i != home));
        Assert.Equal(4, space.RManagers[home].Borrowed);
        ClusterAccounts.AssertBalanced(space, new Dictionary<long, List<int>> { [1] = table });
        Assert.True(space.TryGrow(1, home, table, 20));
        Assert.False(space.TryGrow(1, home, table, 21)); // every lending cap reached
        Assert.Equal(20, table.Count);
        space.Release(1, table);
        Assert.Empty(table);
        Assert.Equal(32, space.FreePages);
        ClusterAccounts.AssertBalanced(space, new Dictionary<long, List<int>>());
    }

    [Fact]
    public void Move_IsTwoPhase_OldestPagesFirst()
    {
        ClusterPageSpace space = Borrowing(instances: 2, pages: 16); // lending cap 8
        var tables = new Dictionary<long, List<int>> { [1] = [] };
        int home = space.PlaceRequest(1, 6);
        Assert.True(space.TryGrow(1, home, tables[1], 6));
        int other = 1 - home;
        List<int> before = [.. tables[1]];

        PreparedMove? prepared = space.PrepareMove(new PageMove(1, home, other, 3));
        Assert.NotNull(prepared);
        Assert.Equal(before.Take(3), prepared.Copies.Select(c => c.OldPage));
        Assert.All(prepared.Copies, c => Assert.Equal(other, space.InstanceOf(c.NewPage)));
        Assert.Equal(before, tables[1]); // untouched until the copy is confirmed
        Assert.Null(space.PrepareMove(new PageMove(1, home, other, 1))); // one pending move per request
        Assert.Equal(3, space.RManagers[other].Reserved);

        space.AbortMove(prepared);
        Assert.Equal(before, tables[1]);
        Assert.Equal(0, space.RManagers[other].Reserved);
        ClusterAccounts.AssertBalanced(space, tables);
        Assert.False(space.CommitMove(prepared));

        prepared = space.PrepareMove(new PageMove(1, home, other, 10))!;
        Assert.Equal(5, prepared.Copies.Count); // the newest page stays where decode appends
        Assert.True(space.CommitMove(prepared));
        Assert.Equal(prepared.Copies.Select(c => c.NewPage), tables[1].Take(5));
        Assert.Equal(before[5], tables[1][5]);
        Assert.Equal(5, space.RManagers[home].Borrowed);
        ClusterAccounts.AssertBalanced(space, tables);

        // And back home: the debt is repaid.
        prepared = space.PrepareMove(new PageMove(1, other, home, 5))!;
        Assert.True(space.CommitMove(prepared));
        Assert.Equal(0, space.RManagers[home].Borrowed);
        Assert.Equal(0, space.RManagers[other].Lent);
        ClusterAccounts.AssertBalanced(space, tables);
    }

    [Fact]
    public void StaleView_RefusedReservationWaitsForTheNextPlan()
    {
        // Heartbeats only when asked: the gManager plans on what it last heard.
        var space = new ClusterPageSpace(2, 16, 4, new FixedMovesPolicy(), gManagerOptions: new GManagerOptions { MaxMoveTokensPerPlan = 64 })
        {
            HeartbeatEveryOperation = false,
        };
        var a = new List<int>();
        var b = new List<int>();
        Assert.Equal(0, space.PlaceRequest(1, 6));
        Assert.True(space.TryGrow(1, 0, a, 6));
        Assert.Equal(0, space.PlaceRequest(2, 12));
        Assert.True(space.TryGrow(2, 0, b, 18)); // 10 local, 8 lent by instance 1: its cap is reached
        Assert.Equal(8, space.RManagers[1].Lent);

        var move = new PageMove(1, 0, 1, 3);
        Assert.Null(space.PrepareMove(move)); // instance 1 refuses: the cap protects its own requests
        Assert.Equal(1, space.ReservationsRefused);

        space.Release(2, b);
        PreparedMove? later = space.PrepareMove(move); // the next plan's try is granted
        Assert.NotNull(later);
        Assert.True(space.CommitMove(later));
        Assert.Equal(3, space.RManagers[0].Borrowed);
        ClusterAccounts.AssertBalanced(space, new Dictionary<long, List<int>> { [1] = a });
    }

    private sealed class FixedMovesPolicy : IPlacementPolicy
    {
        public bool AllowsBorrowing => true;
        public int ChooseHome(IReadOnlyList<InstanceView> instances, int pages) => 0;
        public IReadOnlyList<int> ChooseCreditors(IReadOnlyList<InstanceView> instances, int debtor) => [1 - debtor];
        public IReadOnlyList<PageMove> PlanMoves(ClusterView view) => [];
    }

    [Fact]
    public void ReleaseDuringAPendingMove_AbortsIt()
    {
        ClusterPageSpace space = Borrowing(instances: 2, pages: 8);
        var table = new List<int>();
        int home = space.PlaceRequest(1, 4);
        Assert.True(space.TryGrow(1, home, table, 4));
        PreparedMove prepared = space.PrepareMove(new PageMove(1, home, 1 - home, 2))!;
        space.Release(1, table);
        Assert.False(prepared.IsPending);
        Assert.False(space.CommitMove(prepared));
        Assert.Equal(16, space.FreePages);
        ClusterAccounts.AssertBalanced(space, new Dictionary<long, List<int>>());
    }

    [Fact]
    public void MarkFailed_FailsOnlyRequestsWithPagesThere_AndNeverHandsThemOutAgain()
    {
        ClusterPageSpace space = Borrowing(instances: 3, pages: 8);
        var tables = new Dictionary<long, List<int>>();
        for (long id = 1; id <= 3; id++)
        {
            int home = space.PlaceRequest(id, 2);
            tables[id] = [];
            Assert.True(space.TryGrow(id, home, tables[id], 2));
        }
        // Request 1 grows beyond its home and borrows.
        int home1 = space.HomeOf(1);
        Assert.True(space.TryGrow(1, home1, tables[1], 10));
        int creditor = tables[1].Select(p => p / 8).First(i => i != home1);

        IReadOnlyList<long> lost = space.MarkFailed(creditor);

        var expected = tables.Where(t => t.Value.Any(p => p / 8 == creditor)).Select(t => t.Key).Order().ToList();
        Assert.Equal(expected, lost);
        Assert.Contains(1L, lost);
        foreach (long id in lost)
        {
            space.Release(id, tables[id]);
            tables.Remove(id);
        }
        ClusterAccounts.AssertBalanced(space, tables);
        Assert.Equal(24, space.TotalPages); // the id space stays
        Assert.Equal(16 - space.UsedPages, space.FreePages); // but the lost pool is not free
        for (long id = 10; id < 20; id++)
        {
            int home = space.PlaceRequest(id, 1);
            if (home < 0)
                break;
            Assert.NotEqual(creditor, home);
            var t = new List<int>();
            if (space.TryGrow(id, home, t, 3))
                Assert.DoesNotContain(t, p => p / 8 == creditor);
            tables[id] = t;
        }
        Assert.Equal(0, space.RManagers[creditor].LendablePages);
        Assert.True(space.GManager.Instances[creditor].Failed);
        ClusterAccounts.AssertBalanced(space, tables);
    }

    [Fact]
    public void BadInput_IsRejectedClearly()
    {
        ClusterPageSpace space = Borrowing();
        Assert.Throws<ArgumentOutOfRangeException>(() => new ClusterPageSpace(0, 8, 4, new StaticPolicy()));
        Assert.Throws<ArgumentOutOfRangeException>(() => space.TryGrow(1, 4, [], 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => space.PlaceRequest(1, -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => space.MarkFailed(7));
        int home = space.PlaceRequest(1, 1);
        var table = new List<int>();
        Assert.True(space.TryGrow(1, home, table, 1));
        Assert.Throws<ArgumentException>(() => space.TryGrow(1, (home + 1) % 4, table, 2));
        Assert.Throws<ArgumentException>(() => space.TryGrow(1, home, [], 2));
        var copy = new List<int>(table);
        space.Release(1, table);
        var error = Assert.Throws<InvalidOperationException>(() => space.Release(1, copy));
        Assert.Contains($"Page {copy[0]}", error.Message);
        Assert.Throws<InvalidOperationException>(() => space.Release(2, [999]));
        Assert.Throws<ArgumentException>(() => space.PrepareMove(new PageMove(1, 2, 2, 1)));
    }

    [Fact]
    public void GManager_ThrottlesMovesPerPlan()
    {
        var policy = new FixedMoves(new PageMove(1, 0, 1, 5), new PageMove(2, 0, 1, 5));
        var small = new GManager(2, 8, pageSize: 16, policy);
        Assert.Equal([new PageMove(1, 0, 1, 1)], small.PlanMoves()); // 16 tokens = one page per plan
        Assert.Equal([new PageMove(1, 0, 1, 1)], small.PlanMoves());

        var big = new GManager(2, 8, pageSize: 64, policy);
        Assert.Empty(big.PlanMoves());
        Assert.Empty(big.PlanMoves());
        Assert.Empty(big.PlanMoves());
        Assert.Equal([new PageMove(1, 0, 1, 1)], big.PlanMoves()); // one 64-token page every four plans

        var wide = new GManager(2, 8, pageSize: 4, policy, new GManagerOptions { MaxMoveTokensPerPlan = 32 });
        Assert.Equal([new PageMove(1, 0, 1, 5), new PageMove(2, 0, 1, 3)], wide.PlanMoves());
    }

    private sealed class FixedMoves(params PageMove[] moves) : IPlacementPolicy
    {
        public bool AllowsBorrowing => true;
        public int ChooseHome(IReadOnlyList<InstanceView> instances, int pages) => 0;
        public IReadOnlyList<int> ChooseCreditors(IReadOnlyList<InstanceView> instances, int debtor) => [];
        public IReadOnlyList<PageMove> PlanMoves(ClusterView view) => moves;
    }
}
