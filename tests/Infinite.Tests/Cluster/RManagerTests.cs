using Infinite.Cluster;

namespace Infinite.Tests.Cluster;

public sealed class RManagerTests
{
    [Fact]
    public void LendingCap_StopsLending_ButNotOwnAllocation()
    {
        var rm = new RManager(1, 10); // default cap 0.5 -> 5 pages
        var pages = new List<int>();
        Assert.Equal(5, rm.LendCapPages);
        Assert.Equal(LendDecision.Granted, rm.Lend(100, requester: 0, home: 0, 4, pages));
        Assert.Equal(LendDecision.CapReached, rm.Lend(101, requester: 2, home: 2, 2, pages));
        Assert.Equal(4, pages.Count);
        Assert.Equal(1, rm.LendablePages);
        Assert.Equal(LendDecision.Granted, rm.Lend(101, requester: 2, home: 2, 1, pages));
        Assert.Equal(0, rm.LendablePages);

        rm.Register(7);
        Assert.True(rm.TryAllocate(7, 5, pages)); // own requests get the rest
        Assert.Equal((5, 5, 0), (rm.Own, rm.Lent, rm.Free));
        Assert.False(rm.TryAllocate(7, 1, pages));
    }

    [Fact]
    public void LoopGuard_RefusesToLendForARequestThatIsRemoteToTheAsker()
    {
        var rm = new RManager(2, 10);
        var pages = new List<int>();
        // Instance 1 holds pages of request 5 (homed on 0) and asks instance 2 on its behalf: refused.
        Assert.Equal(LendDecision.LoopGuard, rm.Lend(5, requester: 1, home: 0, 2, pages));
        Assert.Empty(pages);
        Assert.Equal(10, rm.Free);
        Assert.Equal(LendDecision.Granted, rm.Lend(5, requester: 0, home: 0, 2, pages));
        Assert.Throws<ArgumentException>(() => rm.Lend(6, requester: 2, home: 2, 1, pages));
    }

    [Fact]
    public void Reservations_AreFirstComeFirstServed()
    {
        var rm = new RManager(0, 10, new RManagerOptions { LendingCap = 0.5 });
        var first = new List<int>();
        var second = new List<int>();
        Assert.Equal(LendDecision.Granted, rm.Reserve(1, home: 3, 3, first));
        // The second would fit the free pages, but the first took the cap's room: it waits for a later plan.
        Assert.Equal(LendDecision.CapReached, rm.Reserve(2, home: 1, 3, second));
        Assert.Empty(second);
        Assert.Equal(3, rm.Reserved);
        foreach (int p in first)
            rm.Release(1, p); // the first move was aborted
        Assert.Equal(0, rm.Reserved);
        Assert.Equal(LendDecision.Granted, rm.Reserve(2, home: 1, 3, second));
        rm.CommitReserved(2, second);
        Assert.Equal((0, 3), (rm.Reserved, rm.Lent));

        // A reservation at the request's home is not lending: no cap, only free pages.
        rm.Register(9);
        var own = new List<int>();
        Assert.Equal(LendDecision.Granted, rm.Reserve(9, home: 0, 7, own));
        Assert.Equal(LendDecision.NoFreePages, rm.Reserve(9, home: 0, 1, own));
    }

    [Fact]
    public void DoubleOrForeignRelease_ThrowsWithTheGlobalPageId()
    {
        var rm = new RManager(2, 10);
        rm.Register(1);
        rm.Register(2);
        var a = new List<int>();
        Assert.True(rm.TryAllocate(1, 4, a));
        var error = Assert.Throws<InvalidOperationException>(() => rm.Release(2, a[3]));
        Assert.Contains("Page 23", error.Message);
        rm.Release(1, a[3]);
        error = Assert.Throws<InvalidOperationException>(() => rm.Release(1, a[3]));
        Assert.Contains("Page 23", error.Message);
        Assert.Throws<InvalidOperationException>(() => rm.Release(1, 10));
        Assert.Throws<InvalidOperationException>(() => rm.Unregister(1)); // still holds pages
    }

    [Fact]
    public void Heartbeats_CarryChangedEntries_AndFullSnapshots()
    {
        var rm = new RManager(1, 8);
        rm.Register(10);
        var pages = new List<int>();
        Assert.True(rm.TryAllocate(10, 2, pages));
        Assert.Equal(LendDecision.Granted, rm.Lend(20, 0, 0, 3, pages));
        Heartbeat first = rm.TakeHeartbeat();
        Assert.False(first.Full);
        Assert.Equal(1, first.Sequence);
        Assert.Equal([new HeartbeatEntry(10, 1, 2, true), new HeartbeatEntry(20, 1, 3, false)], first.Entries);
        Assert.Equal(new InstanceView(1, 8, 3, 1, 1, 0, false), first.State);
        Assert.False(rm.HasChanges);

        foreach (int p in pages.Skip(2))
            rm.Release(20, p);
        Heartbeat second = rm.TakeHeartbeat();
        Assert.Equal(2, second.Sequence);
        Assert.Equal([new HeartbeatEntry(20, 1, 0, false)], second.Entries); // request 20 is gone from instance 1

        Heartbeat full = rm.FullHeartbeat();
        Assert.True(full.Full);
        Assert.Equal(2, full.Sequence);
        Assert.Equal([new HeartbeatEntry(10, 1, 2, true)], full.Entries);
    }

    [Fact]
    public void FailedInstance_HandsOutNothing_ButAcceptsReleases()
    {
        var rm = new RManager(0, 4);
        rm.Register(1);
        var pages = new List<int>();
        Assert.True(rm.TryAllocate(1, 2, pages));
        rm.Fail();
        Assert.False(rm.TryAllocate(1, 1, pages));
        Assert.Equal(LendDecision.Failed, rm.Lend(2, 1, 1, 1, pages));
        Assert.Equal(LendDecision.Failed, rm.Reserve(2, 1, 1, pages));
        Assert.Equal(0, rm.LendablePages);
        rm.Release(1, pages[0]);
        rm.Release(1, pages[1]);
        rm.Unregister(1);
        Assert.Equal((0, 0, 4), (rm.Own, rm.Lent, rm.Free));
        Assert.True(rm.TakeHeartbeat().State.Failed);
    }

    [Fact]
    public void BadSettings_AreRejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new RManager(0, 4, new RManagerOptions { LendingCap = 1.5 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RManager(-1, 4));
        var rm = new RManager(0, 4);
        Assert.Throws<InvalidOperationException>(() => rm.TryAllocate(5, 1, [])); // not homed here
        Assert.Throws<ArgumentOutOfRangeException>(() => rm.BatchTokens = -1);
    }
}
