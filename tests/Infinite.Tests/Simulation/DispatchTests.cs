using Infinite.Simulation;

namespace Infinite.Tests.Simulation;

/// <summary>Per-instance dispatch (a balancer picks the instance on arrival) against one global queue.</summary>
public sealed class DispatchTests
{
    [Fact]
    public void Arrival_dispatch_binds_each_request_to_the_least_loaded_instance_and_static_never_moves_it()
    {
        ClusterLayout layout = SimulationFixture.Layout(gpus: 4);
        // 24 prompts of 20K-43K tokens with 6,000 output tokens each: six per instance do not fit its pool, so decodes
        // run out of pages and preempt.
        WorkloadRequest[] workload = [.. Enumerable.Range(0, 24).Select(k => new WorkloadRequest(0, 20_000 + 1_000 * k, 6_000))];
        SimulationResult result = SimulationFixture.Run("static", layout, workload, new SimulationOptions { Dispatch = DispatchMode.Arrival });

        // The balancer by hand: all arrive at time 0, before anything finishes; fewest outstanding prompt tokens wins,
        // ties to the lower index.
        var outstanding = new long[layout.Instances];
        foreach (RequestOutcome r in result.Requests)
        {
            int expected = Array.IndexOf(outstanding, outstanding.Min());
            outstanding[expected] += r.Request.PromptTokens;
            Assert.True(r.Served, r.RejectReason);
            Assert.Equal(expected, r.Home);
        }
        Assert.True(result.Preemptions > 0, "no request was preempted, so none had a chance to move");
        Assert.Contains(result.Requests, r => r.Preemptions > 0);
    }

    [Fact]
    public void Round_robin_deals_requests_in_turn()
    {
        ClusterLayout layout = SimulationFixture.Layout(gpus: 4);
        WorkloadRequest[] workload = [.. Enumerable.Range(0, 10).Select(k => new WorkloadRequest(0, 1_000 + 7_000 * (k % 3), 16))];
        SimulationResult result = SimulationFixture.Run("static", layout, workload, new SimulationOptions { Dispatch = DispatchMode.ArrivalRoundRobin });
        Assert.Equal(Enumerable.Range(0, 10).Select(k => k % 4), result.Requests.Select(r => r.Home));
    }

    /// <summary>Two 7B instances of 111,616 tokens. The balancer sends r0 (60K) to instance 0, r1 (2K) and r2 (60K) to
    /// instance 1, and r3 (60K) to instance 0, where it does not fit beside r0. Instance 1 finishes its short requests
    /// and idles; r0 decodes 1,500 tokens.</summary>
    private static readonly WorkloadRequest[] Stranded =
    [
        new(0, 60_000, 1_500),
        new(0, 2_000, 8),
        new(0, 60_000, 8),
        new(0, 60_000, 8),
    ];

    [Fact]
    public void Under_static_a_queue_waits_while_another_instance_idles_and_borrowing_drains_it()
    {
        ClusterLayout layout = SimulationFixture.Layout(gpus: 2);
        var arrival = new SimulationOptions { Dispatch = DispatchMode.Arrival };

        SimulationResult stat = SimulationFixture.Run("static", layout, Stranded, arrival);
        RequestOutcome r0 = stat.Requests[0], r2 = stat.Requests[2], r3 = stat.Requests[3];
        Assert.Equal((0, 1, 0), (r0.Home, r2.Home, r3.Home));
        Assert.True(r2.Completion < r3.TimeToFirstToken, "instance 1 was idle while r3 waited");
        Assert.True(r3.TimeToFirstToken >= r0.Completion, "r3 started before its instance had room");

        SimulationResult borrow = SimulationFixture.Run("borrowing", layout, Stranded, arrival);
        Assert.Equal(0, borrow.Requests[3].Home); // still its own instance's request, with pages borrowed on instance 1
        Assert.True(borrow.Requests[3].TimeToFirstToken < borrow.Requests[0].Completion);

        // One global queue binds late: r3 goes to instance 1 once r1 and r2 leave it.
        SimulationResult global = SimulationFixture.Run("static", layout, Stranded, new SimulationOptions { Dispatch = DispatchMode.Global });
        Assert.Equal(1, global.Requests[3].Home);
        Assert.True(global.Requests[3].TimeToFirstToken < global.Requests[0].Completion);
    }

    [Fact]
    public void A_shared_host_keeps_the_engines_global_queue()
    {
        var bad = new SimulationOptions { SharedHost = true, Dispatch = DispatchMode.Arrival };
        ArgumentException e = Assert.Throws<ArgumentException>(bad.Validate);
        Assert.Contains("global dispatch", e.Message);
        new SimulationOptions { SharedHost = true, Dispatch = DispatchMode.Global }.Validate();
    }

    [Theory]
    [InlineData("arrival", DispatchMode.Arrival)]
    [InlineData("Round-Robin", DispatchMode.ArrivalRoundRobin)]
    [InlineData("global", DispatchMode.Global)]
    public void Dispatch_names_parse(string name, DispatchMode mode) => Assert.Equal(mode, DispatchModes.Parse(name));

    [Fact]
    public void An_unknown_dispatch_name_is_refused_by_name() =>
        Assert.Contains("Unknown dispatch 'fifo'", Assert.Throws<ArgumentException>(() => DispatchModes.Parse("fifo")).Message);
}
