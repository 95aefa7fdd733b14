using Infinite.Simulation;

namespace Infinite.Tests.Simulation;

/// <summary>The policies differ where the paper says they do: what fits and where pages go.</summary>
public sealed class PolicyComparisonTests
{
    private static readonly WorkloadRequest[] Workload =
    [
        new(0.0, 2_000, 16),
        new(0.1, 200_000, 4), // more than one A100-80GB holds for 7B (~111K tokens)
        new(0.2, 3_000, 16),
    ];

    [Fact]
    public void Static_rejects_a_request_larger_than_one_instance_while_borrowing_serves_it()
    {
        ClusterLayout layout = SimulationFixture.Layout(gpus: 4);
        Assert.True(layout.TokensPerInstance < 200_004);

        SimulationResult stat = SimulationFixture.Run("static", layout, Workload);
        Assert.False(stat.Requests[1].Served);
        Assert.Contains("more KV pages than one request may hold", stat.Requests[1].RejectReason);
        Assert.True(stat.Requests[0].Served && stat.Requests[2].Served);

        SimulationResult borrow = SimulationFixture.Run("borrowing", layout, Workload);
        Assert.All(borrow.Requests, r => Assert.True(r.Served, r.RejectReason));
        Assert.Equal(200_004, borrow.LargestContextServed);
        Assert.Equal(3_016, stat.LargestContextServed);
    }

    [Fact]
    public void The_single_instance_baseline_pools_all_memory_in_one_tensor_parallel_instance()
    {
        ClusterLayout layout = SimulationFixture.Layout(gpus: 4);
        var simulator = new ClusterSimulator(new SinglePolicy(), layout, Workload);
        Assert.Equal(1, simulator.Layout.Instances);
        Assert.Equal(4, simulator.Layout.GpusPerInstance);
        Assert.True(simulator.Layout.TokensPerInstance > 4 * layout.TokensPerInstance); // weights stored once, not 4 times
        SimulationResult result = simulator.Run();
        Assert.All(result.Requests, r => Assert.True(r.Served, r.RejectReason));
    }

    [Theory]
    [InlineData("static")]
    [InlineData("borrowing")]
    [InlineData("single")]
    public void A_request_of_more_than_int_MaxValue_tokens_is_rejected_not_wrapped_around(string policy)
    {
        SimulationResult result = SimulationFixture.Run(policy, SimulationFixture.Layout(gpus: 4),
            [new WorkloadRequest(0, int.MaxValue, 10), new WorkloadRequest(0, 1000, 10)]);
        Assert.False(result.Requests[0].Served);
        Assert.Contains("more KV pages than one request may hold", result.Requests[0].RejectReason);
        Assert.True(result.Requests[1].Served);
    }

    [Fact]
    public void Borrowing_migrates_pages_through_the_gManager_and_every_page_comes_back()
    {
        ClusterLayout layout = SimulationFixture.Layout(gpus: 8);
        IReadOnlyList<WorkloadRequest> workload = SyntheticWorkload.Generate(LengthMix.Short, 0, 120, seed: 1);
        SimulationResult borrowing = SimulationFixture.Run("borrowing", layout, workload);
        SimulationResult noMoves = SimulationFixture.Run("borrowing", layout, workload, new SimulationOptions { MigrationTokensPerStep = 0 });
        Assert.True(borrowing.PagesMigrated > 0, "the greedy plan moved nothing");
        Assert.Equal(0, noMoves.PagesMigrated);
        Assert.All(borrowing.Requests, r => Assert.True(r.Served, r.RejectReason));
        Assert.Equal(0, borrowing.Utilisation[^1].KvUtilisation);
    }
}
