using Infinite.Cluster;

namespace Infinite.Tests.Cluster;

public sealed class ClusterRandomizedTests
{
    [Theory]
    [InlineData(1, false)]
    [InlineData(2, false)]
    [InlineData(3, true)]
    public void RandomOperations_KeepEveryAccountBalanced(int seed, bool staticPolicy)
    {
        const int instances = 4, pages = 16;
        IPlacementPolicy policy = staticPolicy ? new StaticPolicy() : new BorrowingPolicy(new LinearCostModel(),
            new BorrowingOptions { DebtorMaxBatch = 4, MinRelativeGain = 0 });
        var space = new ClusterPageSpace(instances, pages, pageSize: 4, policy,
            gManagerOptions: new GManagerOptions { MaxMoveTokensPerPlan = 64 });
        var random = new Random(seed);
        var tables = new Dictionary<long, List<int>>();
        var failed = new HashSet<int>();
        long nextId = 1;
        int grows = 0, refusedGrows = 0, moves = 0, planned = 0;

        for (int op = 0; op < 4000; op++)
        {
            int kind = random.Next(100);
            if (kind < 25 || tables.Count == 0)
            {
                long id = nextId++;
                int home = space.PlaceRequest(id, random.Next(1, 12));
                if (home >= 0)
                {
                    Assert.DoesNotContain(home, failed);
                    tables[id] = [];
                }
            }
            else if (kind < 60)
            {
                long id = Pick(random, tables);
                List<int> table = tables[id];
                int home = space.HomeOf(id);
                int target = table.Count + random.Next(1, 8);
                int available = space.AvailableTo(id, home);
                var before = new List<int>(table);
                bool grown = space.TryGrow(id, home, table, target);
                Assert.Equal(available >= target - before.Count, grown);
                if (grown)
                {
                    grows++;
                    Assert.Equal(target, table.Count);
                    Assert.Equal(before, table.Take(before.Count));
                    Assert.DoesNotContain(table.Skip(before.Count), p => failed.Contains(p / pages));
                    if (staticPolicy)
                        Assert.All(table, p => Assert.Equal(home, p / pages));
                }
                else
                {
                    refusedGrows++;
                    Assert.Equal(before, table);
                }
            }
            else if (kind < 80)
            {
                long id = Pick(random, tables);
                if (random.Next(10) == 0)
                {
                    // A stale copy of someone's table: releasing it must fail loudly, not corrupt.
                    var copy = new List<int>(tables[id]);
                    space.Release(id, tables[id]);
                    if (copy.Count > 0)
                        Assert.Throws<InvalidOperationException>(() => space.Release(id, copy));
                }
                else
                {
                    space.Release(id, tables[id]);
                }
                tables.Remove(id);
            }
            else if (kind < 95)
            {
                PageMove? move = null;
                if (random.Next(2) == 0)
                {
                    IReadOnlyList<PageMove> plan = space.PlanMoves(new Demand(random.Next(4), 3));
                    planned += plan.Count;
                    if (plan.Count > 0)
                        move = plan[0];
                }
                else
                {
                    long id = Pick(random, tables);
                    if (tables[id].Count > 1)
                    {
                        int from = tables[id][random.Next(tables[id].Count)] / pages;
                        move = new PageMove(id, from, (from + random.Next(1, instances)) % instances, random.Next(1, 5));
                    }
                }
                if (move is { } m && tables.TryGetValue(m.RequestId, out List<int>? table))
                {
                    var before = new List<int>(table);
                    PreparedMove? prepared = space.PrepareMove(m);
                    if (prepared is not null)
                    {
                        Assert.Equal(before, table);
                        Assert.InRange(prepared.Copies.Count, 1, m.Pages);
                        Assert.All(prepared.Copies, c => Assert.Equal(m.From, c.OldPage / pages));
                        Assert.All(prepared.Copies, c => Assert.Equal(m.To, c.NewPage / pages));
                        if (random.Next(4) == 0)
                        {
                            space.AbortMove(prepared);
                            Assert.Equal(before, table);
                        }
                        else
                        {
                            Assert.True(space.CommitMove(prepared));
                            moves++;
                            Assert.Equal(before.Count, table.Count);
                            Assert.Equal(before[^1], table[^1]);
                        }
                    }
                }
            }
            else if (kind < 96 && failed.Count < 2 && random.Next(8) == 0)
            {
                int victim = random.Next(instances);
                if (failed.Add(victim))
                {
                    IReadOnlyList<long> lost = space.MarkFailed(victim);
                    var expected = tables.Where(t => t.Value.Any(p => p / pages == victim) || space.HomeOf(t.Key) == victim)
                        .Select(t => t.Key).Order().ToList();
                    Assert.Equal(expected, lost);
                    foreach (long id in lost)
                    {
                        space.Release(id, tables[id]);
                        tables.Remove(id);
                    }
                }
            }
            ClusterAccounts.AssertBalanced(space, tables);
        }

        // A gManager restarted now rebuilds the same state from one round of full heartbeats.
        space.Heartbeat();
        var rebuilt = new GManager(instances, pages, 4, policy);
        foreach (RManager rm in space.RManagers)
            Assert.True(rebuilt.Apply(rm.FullHeartbeat()));
        Assert.Equal(space.GManager.Entries(), rebuilt.Entries());
        Assert.Equal(space.GManager.Instances, rebuilt.Instances);
        foreach (long id in tables.Keys)
            Assert.Equal(space.HomeOf(id), rebuilt.HomeOf(id));

        Assert.True(grows > 100 && refusedGrows > 10, $"grows {grows}, refused {refusedGrows}");
        if (!staticPolicy)
            Assert.True(moves > 20, $"only {moves} moves");
        foreach ((long id, List<int> table) in tables)
            space.Release(id, table);
        ClusterAccounts.AssertBalanced(space, new Dictionary<long, List<int>>());
        Assert.Equal(0, space.UsedPages);
        Assert.All(space.RManagers, r => Assert.Equal((0, 0, 0, 0), (r.Own, r.Lent, r.Borrowed, r.RunningRequests)));
        space.Heartbeat();
        Assert.Empty(space.GManager.Entries());
    }

    [Fact]
    public void GManager_MissingADeltaHeartbeat_AsksForAFullOne()
    {
        var rm = new RManager(0, 8);
        var gm = new GManager(1, 8, 4, new StaticPolicy());
        Assert.True(gm.NeedsFullHeartbeat(0));
        Assert.False(gm.Apply(rm.TakeHeartbeat())); // a delta before any full heartbeat is not enough
        Assert.True(gm.Apply(rm.FullHeartbeat()));
        rm.Register(1);
        var pages = new List<int>();
        Assert.True(rm.TryAllocate(1, 3, pages));
        Assert.True(gm.Apply(rm.TakeHeartbeat()));
        Assert.Equal(3, gm.BlocksOf(1)[0]);
        rm.Release(1, pages[2]);
        _ = rm.TakeHeartbeat(); // lost on the way
        rm.Release(1, pages[1]);
        Assert.False(gm.Apply(rm.TakeHeartbeat()));
        Assert.True(gm.NeedsFullHeartbeat(0));
        Assert.True(gm.Apply(rm.FullHeartbeat()));
        Assert.Equal(1, gm.BlocksOf(1)[0]);
        Assert.Equal(0, gm.HomeOf(1));
        Assert.Equal(7, gm.Instances[0].FreePages);
        Assert.Throws<ArgumentOutOfRangeException>(() => gm.NeedsFullHeartbeat(1));
    }

    private static long Pick(Random random, Dictionary<long, List<int>> tables) =>
        tables.Keys.ElementAt(random.Next(tables.Count));
}
