using Infinite.Simulation;

namespace Infinite.Tests.Simulation;

/// <summary>
/// The <c>ideal-instances</c> policy bounds every placement over the cluster's N independent instances: one pool of
/// exactly N instances' KV pages, N weight copies read per step, no communication, no kernel floor, work split
/// perfectly. It lies between those policies and <c>ideal</c> (weights stored and read once).
/// </summary>
public sealed class IdealInstancesPolicyTests
{
    [Fact]
    public void It_pools_the_instances_pages_and_reads_their_weight_copies()
    {
        ClusterLayout cluster = SimulationFixture.Layout(gpus: 4); // 4 x 7B instances of one GPU
        SimulationPolicy policy = SimulationPolicies.Create("ideal-instances", new SimulationOptions(), 0.5);
        ClusterLayout pooled = policy.Arrange(cluster);
        Assert.Equal("ideal-instances", policy.Name);
        Assert.Equal(1, pooled.Instances);
        Assert.Equal(4, pooled.GpusPerInstance);
        Assert.Equal(4 * cluster.PagesPerInstance, pooled.PagesPerInstance);
        Assert.Equal(4, pooled.WeightCopies);
        // ideal keeps one copy and so more pages than the 4 instances together
        ClusterLayout ideal = SimulationPolicies.Create("ideal", new SimulationOptions(), 0.5).Arrange(cluster);
        Assert.True(ideal.PagesPerInstance > pooled.PagesPerInstance);

        RooflineCostModel cost = policy.CreateCostModel(pooled);
        var gpu = new RooflineCostModel(cluster);
        var once = new RooflineCostModel(ideal) { IdealParallelism = true };
        Assert.True(cost.IdealParallelism);
        Assert.Equal(0, cost.AllReduceSeconds(2048));
        // A decode row is weight-bound: 4 copies over 4 GPUs take one GPU's time for its copy; ideal reads one copy.
        Assert.Equal(gpu.GemmSeconds(1, 1), cost.GemmSeconds(1, 1), 12);
        Assert.Equal(gpu.GemmSeconds(1, 1) / 4, once.GemmSeconds(1, 1), 12);
        // A prefill chunk is compute-bound: its FLOPs split 4 ways, as for ideal.
        Assert.Equal(gpu.GemmSeconds(4 * 2048, 1) / 4, cost.GemmSeconds(4 * 2048, 1), 9);
    }

    [Fact]
    public void Its_pool_holds_exactly_the_instances_pages()
    {
        ClusterLayout layout = SimulationFixture.Layout(gpus: 4);
        long pool = 4L * layout.PagesPerInstance * layout.PageTokens; // 4 x 111,616 tokens
        WorkloadRequest[] workload =
        [
            new(0, (int)(pool - layout.PageTokens) - 20, 20), // the pool but one page
            new(0, (int)(pool + layout.PageTokens) - 20, 20), // one page more than the pool
        ];
        SimulationResult result = SimulationFixture.Run("ideal-instances", layout, workload);
        Assert.True(result.Requests[0].Served, result.Requests[0].RejectReason);
        Assert.False(result.Requests[1].Served);
        Assert.Contains($"({4 * layout.PagesPerInstance} pages = {pool} tokens)", result.Requests[1].RejectReason);
        Assert.Equal(pool - layout.PageTokens, result.LargestContextServed);
        // ideal stores the weights once and has room for it
        Assert.True(SimulationFixture.Run("ideal", layout, workload).Requests[1].Served);
    }

    /// <summary>The small scenarios of <see cref="IdealPolicyTests"/>, in which every policy serves every request.</summary>
    [Theory]
    [MemberData(nameof(IdealPolicyTests.Scenarios), MemberType = typeof(IdealPolicyTests))]
    public void Its_throughput_lies_between_the_placements_and_ideal(string model, int gpus, string mix, int requests, double rate, string dispatch)
    {
        ClusterLayout layout = SimulationFixture.Layout(gpus, model);
        IReadOnlyList<WorkloadRequest> workload = SyntheticWorkload.Generate(LengthMix.Parse(mix), rate, requests, seed: 3);
        var options = new SimulationOptions { Dispatch = DispatchModes.Parse(dispatch) };
        Scenario scenario = SimulationRunner.Run(layout, mix, workload,
            SimulationPolicies.Parse("static,borrowing,ideal-instances,ideal", options, 0.5), options);
        SimulationResult bound = scenario.Of("ideal-instances")!;
        SimulationResult ideal = scenario.Of("ideal")!;
        Assert.All(scenario.Results, r => Assert.True(r.Rejected == 0, $"{r.Policy} rejected {r.Rejected}: the comparison needs the same work"));
        // 1% slack for the batcher's step granularity, as in IdealPolicyTests.
        Assert.True(bound.Throughput <= 1.01 * ideal.Throughput,
            $"{model} x{gpus} {mix}: ideal-instances {bound.Throughput:0.0} tok/s > ideal {ideal.Throughput:0.0} tok/s");
        foreach (string placement in new[] { "static", "borrowing" })
        {
            SimulationResult r = scenario.Of(placement)!;
            Assert.True(bound.Throughput >= 0.99 * r.Throughput,
                $"{model} x{gpus} {mix}: ideal-instances {bound.Throughput:0.0} tok/s < {placement} {r.Throughput:0.0} tok/s");
        }
    }
}
