namespace Infinite.Native.Tests;

/// <summary>The communicator bindings over the in-process kind: lifetimes, messages, the two failure exceptions and
/// page migration between pools.</summary>
public sealed class CommTests
{
    [Fact]
    public void Endpoints_keep_their_group_alive_and_are_counted_until_released()
    {
        LiveObjects before = InfiniteLibrary.GetLiveObjects();
        var group = CommGroup.Create(2);
        var a = Communicator.CreateInProcess(group, 0);
        var b = Communicator.CreateInProcess(group, 1);
        Assert.Equal(before with { Comms = before.Comms + 2, CommGroups = before.CommGroups + 1 }, InfiniteLibrary.GetLiveObjects());
        Assert.Equal((CommKind.InProcess, 1, 2), (b.Kind, b.Rank, b.Size));

        group.Dispose();
        Assert.False(group.IsClosed); // the endpoints' references keep the native group
        a.Dispose();
        b.Dispose();
        b.Dispose();
        Assert.True(group.IsClosed);
        Assert.Equal(before, InfiniteLibrary.GetLiveObjects());
    }

    [Fact]
    public void Messages_arrive_in_order_with_their_lengths_and_are_counted()
    {
        using var group = CommGroup.Create(2);
        using var a = Communicator.CreateInProcess(group, 0);
        using var b = Communicator.CreateInProcess(group, 1);
        a.Send(1, 5, [1, 2, 3]);
        a.Send(1, 5, []);
        a.Send(1, 6, [9]);
        Assert.Equal(1, b.Probe(0, 6));
        Assert.Equal([9], b.Receive(0, 6));
        Assert.Equal(3, b.Probe(0, 5));
        var buffer = new byte[8];
        Assert.Equal(3, b.Receive(0, 5, buffer));
        Assert.Equal([1, 2, 3], buffer[..3]);
        Assert.Empty(b.Receive(0, 5));

        CommInfo sent = a.Info, received = b.Info;
        Assert.Equal((3UL, 4UL), (sent.MessagesSent, sent.BytesSent));
        Assert.Equal((3UL, 4UL), (received.MessagesReceived, received.BytesReceived));
    }

    [Fact]
    public void A_message_longer_than_the_buffer_stays_queued()
    {
        using var group = CommGroup.Create(2);
        using var a = Communicator.CreateInProcess(group, 0);
        using var b = Communicator.CreateInProcess(group, 1);
        a.Send(1, 0, new byte[10]);
        var e = Assert.Throws<InfiniteException>(() => b.Receive(0, 0, new byte[4]));
        Assert.Equal(InfiniteStatus.OutOfRange, e.Status);
        Assert.Equal(10, b.Receive(0, 0).Length);
    }

    [Fact]
    public void A_silent_peer_times_out_naming_it()
    {
        using var group = CommGroup.Create(3);
        using var a = Communicator.CreateInProcess(group, 0);
        using var b = Communicator.CreateInProcess(group, 2);
        a.Timeout = TimeSpan.FromMilliseconds(50);
        Assert.Equal(TimeSpan.FromMilliseconds(50), a.Timeout);
        var e = Assert.Throws<CommunicationTimeoutException>(() => a.Receive(2, 3));
        Assert.Equal(InfiniteStatus.Timeout, e.Status);
        Assert.Equal(2, e.Peer);
        Assert.IsAssignableFrom<InfiniteException>(e);
    }

    [Fact]
    public void A_destroyed_peer_fails_receives_at_once_with_its_rank()
    {
        using var group = CommGroup.Create(2);
        using var a = Communicator.CreateInProcess(group, 0);
        var b = Communicator.CreateInProcess(group, 1);
        a.Timeout = TimeSpan.FromSeconds(30);
        b.Dispose();
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var e = Assert.Throws<PeerFailedException>(() => a.Receive(1, 0));
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10), "the receive waited for the timeout");
        Assert.Equal(1, e.Peer);
        Assert.Throws<PeerFailedException>(() => a.Send(1, 0, [1]));
    }

    [Fact]
    public void Bad_addresses_and_arguments_name_themselves()
    {
        using var group = CommGroup.Create(2);
        using var a = Communicator.CreateInProcess(group, 0);
        Assert.Equal("peer", Assert.Throws<ArgumentOutOfRangeException>(() => a.Send(2, 0, [])).ParamName);
        Assert.Equal("tag", Assert.Throws<ArgumentOutOfRangeException>(() => a.Send(1, 40000, [])).ParamName);
        Assert.Equal("rank", Assert.Throws<ArgumentOutOfRangeException>(() => Communicator.CreateInProcess(group, 2)).ParamName);
        Assert.Equal("size", Assert.Throws<ArgumentOutOfRangeException>(() => CommGroup.Create(0)).ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => a.Timeout = TimeSpan.Zero);
        Assert.Throws<InfiniteException>(() => Communicator.CreateInProcess(group, 0)); // rank 0 already has an endpoint
    }

    [Fact]
    public void Pages_migrate_between_pools_with_every_layer()
    {
        var config = new PagePoolConfig(Layers: 2, KvHeads: 2, HeadDim: 16, PageSize: 16, Pages: 4, LogicalPageSize: 16);
        using var source = new PagedKvFixture(config, seed: 11);
        using var target = new PagedKvFixture(config, seed: 12);
        int[] slots = Enumerable.Range(0, 16).ToArray();
        var written = new List<(float[] K, float[] V)>();
        for (int layer = 0; layer < 2; layer++)
        {
            foreach (int page in new[] { 1, 3 })
            {
                float[] k = source.RandomFloats(16 * config.TokenWidth), v = source.RandomFloats(16 * config.TokenWidth);
                source.Pool.Append(layer, Enumerable.Repeat(page, 16).ToArray(), slots, k, v);
                written.Add((k, v));
            }
        }
        using var group = CommGroup.Create(2);
        using var a = Communicator.CreateInProcess(group, 0);
        using var b = Communicator.CreateInProcess(group, 1);
        source.Pool.SendPages(a, 1, 7, [3, 1]);
        target.Pool.ReceivePages(b, 0, 7, [0, 2]);

        var sk = new float[config.PageFloats];
        var sv = new float[config.PageFloats];
        var tk = new float[config.PageFloats];
        var tv = new float[config.PageFloats];
        for (int layer = 0; layer < 2; layer++)
        {
            foreach ((int from, int to) in new[] { (3, 0), (1, 2) })
            {
                source.Pool.ReadPage(layer, from, sk, sv);
                target.Pool.ReadPage(layer, to, tk, tv);
                Assert.Equal(sk, tk);
                Assert.Equal(sv, tv);
                Assert.Equal(source.Pool.ReadSummary(layer, from), target.Pool.ReadSummary(layer, to));
            }
        }
    }

    [Fact]
    public void Pages_sent_to_a_pool_of_another_shape_are_refused_naming_the_field()
    {
        using var source = new PagedKvFixture(new PagePoolConfig(1, 2, 16, 16, 2), seed: 1);
        using var target = new PagedKvFixture(new PagePoolConfig(1, 2, 16, 32, 2), seed: 2);
        using var group = CommGroup.Create(2);
        using var a = Communicator.CreateInProcess(group, 0);
        using var b = Communicator.CreateInProcess(group, 1);
        source.Pool.SendPages(a, 1, 0, [0]);
        var e = Assert.Throws<InfiniteException>(() => target.Pool.ReceivePages(b, 0, 0, [1]));
        Assert.Equal(InfiniteStatus.InvalidArgument, e.Status);
        Assert.Contains("page_size", e.NativeMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void Mpi_is_unavailable_with_a_clear_message_or_works_as_a_group_of_one()
    {
        try
        {
            using Communicator world = Communicator.CreateMpi();
            Assert.Equal(CommKind.Mpi, world.Kind);
            Assert.InRange(world.Rank, 0, world.Size - 1);
        }
        catch (InfiniteException e)
        {
            Assert.Equal(InfiniteStatus.BackendUnavailable, e.Status);
            Assert.False(string.IsNullOrWhiteSpace(e.NativeMessage));
        }
    }
}
