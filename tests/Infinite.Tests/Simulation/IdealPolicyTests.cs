using Infinite.Simulation;

namespace Infinite.Tests.Simulation;

/// <summary>
/// The <c>ideal</c> policy is an upper bound on every placement policy under the roofline: one pooled instance over
/// all the GPUs, weights once, no communication, no kernel floor, work split perfectly.
/// </summary>
public sealed class IdealPolicyTests
{
    [Fact]
    public void The_ideal_cost_model_pays_no_all_reduce_and_no_kernel_floor_and_splits_work_exactly()
    {
        ClusterLayout one = SimulationFixture.Layout(gpus: 1);
        ClusterLayout pooled = one with { Gpus = 32, GpusPerInstance = 32 };
        var gpu = new RooflineCostModel(one);
        var tp = new RooflineCostModel(pooled);
        var ideal = new RooflineCostModel(pooled) { IdealParallelism = true };

        Assert.True(tp.AllReduceSeconds(1) > 4e-3); // vLLM-S on 32 GPUs: 74 us per all-reduce, 64 per step
        Assert.Equal(0, ideal.AllReduceSeconds(1));
        Assert.Equal(0, ideal.AllReduceSeconds(2048));
        Assert.Equal(32 * 4 * 5e-6, tp.GemmSeconds(1, 1), 12); // the floor
        // Ideal: exactly 1/32 of one GPU's GEMM time, below the floor, for a decode row and for a prefill chunk.
        Assert.Equal(gpu.GemmSeconds(1, 1) / 32, ideal.GemmSeconds(1, 1), 12);
        Assert.Equal(gpu.GemmSeconds(2048, 1) / 32, ideal.GemmSeconds(2048, 1), 12);

        // A step of 32 decodes at 4K context: the GEMMs and attention of the 32 requests split 32 ways, plus one
        // step's per-layer overhead, as one GPU serving one of them.
        var work = new StepWork(1) { Tokens = 32, LogitRows = 32, Sequences = 32 };
        work.LocalAttentionFlops = 32 * one.Model.AttentionFlops(4095, 1);
        work.LocalAttentionBytes = 32 * 4096 * one.Model.KvBytesPerToken(2);
        var single = new StepWork(1) { Tokens = 1, LogitRows = 1, Sequences = 1 };
        single.LocalAttentionFlops = one.Model.AttentionFlops(4095, 1);
        single.LocalAttentionBytes = 4096 * one.Model.KvBytesPerToken(2);
        StepCost idealStep = ideal.Price(work, 0);
        StepCost gpuStep = gpu.Price(single, 0);
        Assert.Equal(gpuStep.LocalAttentionSeconds, idealStep.LocalAttentionSeconds, 12);
        Assert.Equal(gpuStep.OverheadSeconds, idealStep.OverheadSeconds, 12);
        Assert.Equal(0, idealStep.AllReduceSeconds);
        Assert.True(idealStep.GemmSeconds < gpuStep.GemmSeconds / 31); // the weights are read once for all 32 rows
    }

    [Fact]
    public void Ideal_is_named_on_the_command_line_and_included_in_all()
    {
        var options = new SimulationOptions();
        Assert.Contains("ideal", SimulationPolicies.Names);
        Assert.Equal(["static", "borrowing", "single", "ideal", "ideal-instances"], SimulationPolicies.Parse("all", options, 0.5).Select(p => p.Name));
        SimulationPolicy ideal = SimulationPolicies.Create("ideal", options, 0.5);
        Assert.Equal("ideal", ideal.Name);
        Assert.True(ideal.CreateCostModel(SimulationFixture.Layout(gpus: 8) with { GpusPerInstance = 8 }).IdealParallelism);
        Assert.False(SimulationPolicies.Create("single", options, 0.5).CreateCostModel(SimulationFixture.Layout()).IdealParallelism);
    }

    /// <summary>Small saturated and Poisson scenarios in which every policy serves every request (the short mix fits
    /// one 7B or 70B instance), so the throughputs compare the same work.</summary>
    public static TheoryData<string, int, string, int, double, string> Scenarios => new()
    {
        { "7b", 8, "short", 60, 0, "arrival" },
        { "7b", 8, "short", 60, 2, "arrival" },
        { "7b", 16, "mixed", 200, 0, "arrival" },
        { "7b", 32, "short", 100, 0, "global" },
        { "70b", 8, "short", 40, 0, "arrival" },
    };

    [Theory]
    [MemberData(nameof(Scenarios))]
    public void Ideal_throughput_is_at_least_that_of_every_other_policy(string model, int gpus, string mix, int requests, double rate, string dispatch)
    {
        ClusterLayout layout = SimulationFixture.Layout(gpus, model);
        IReadOnlyList<WorkloadRequest> workload = SyntheticWorkload.Generate(LengthMix.Parse(mix), rate, requests, seed: 3);
        var options = new SimulationOptions { Dispatch = DispatchModes.Parse(dispatch) };
        Scenario scenario = SimulationRunner.Run(layout, mix, workload, SimulationPolicies.Parse("all", options, 0.5), options);
        SimulationResult ideal = scenario.Of("ideal")!;
        foreach (SimulationResult r in scenario.Results)
        {
            Assert.True(r.Rejected == 0, $"{r.Policy} rejected {r.Rejected}: the comparison needs the same work");
            // 1% slack for scheduling granularity, not cost: the pooled instance plans one step of N x 2048 tokens
            // where N instances plan their own, so prefill chunks, preemptions and the last requests' order fall
            // differently; the bound holds for the costs, the batcher's tie-breaks can move a makespan by a step.
            Assert.True(ideal.Throughput >= 0.99 * r.Throughput,
                $"{model} x{gpus} {mix}: ideal {ideal.Throughput:0.0} tok/s < {r.Policy} {r.Throughput:0.0} tok/s");
        }
    }

    [Fact]
    public void Ideal_decodes_faster_than_single_by_at_least_the_all_reduces_single_pays()
    {
        // One request that decodes 200 tokens alone on 32 GPUs: every step is one decode row, so single pays 64
        // all-reduces (74 us each across 4 nodes) and the GEMM floor per step, and ideal neither.
        ClusterLayout layout = SimulationFixture.Layout(gpus: 32);
        WorkloadRequest[] workload = [new(0, 64, 200)];
        SimulationResult single = SimulationFixture.Run("single", layout, workload);
        SimulationResult ideal = SimulationFixture.Run("ideal", layout, workload);
        double allReduces = new RooflineCostModel(layout with { GpusPerInstance = 32 }).AllReduceSeconds(1);
        Assert.True(ideal.MakespanSeconds < single.MakespanSeconds - 199 * allReduces,
            $"ideal {ideal.MakespanSeconds:0.000} s, single {single.MakespanSeconds:0.000} s, all-reduces {199 * allReduces:0.000} s");
    }

    [Fact]
    public void Ideal_serves_every_request_that_fits_the_total_KV_memory()
    {
        ClusterLayout layout = SimulationFixture.Layout(gpus: 4);
        var simulator = new ClusterSimulator(SimulationPolicies.Create("ideal", new SimulationOptions(), 0.5), layout, []);
        long pool = simulator.Layout.TokensPerInstance; // weights once: more than the 4 instances' pools together
        Assert.True(pool > 4 * layout.TokensPerInstance);
        WorkloadRequest[] workload =
        [
            new(0, (int)pool - 100, 20), // the whole pool but a page or two
            new(0, (int)pool, 20), // 20 tokens more than the pool holds (prompt + output)
            .. Enumerable.Range(0, 30).Select(k => new WorkloadRequest(0, (int)(pool / 8), 32)), // 3.75 pools, queued
        ];
        SimulationResult result = SimulationFixture.Run("ideal", layout, workload);
        Assert.True(result.Requests[0].Served, result.Requests[0].RejectReason);
        Assert.False(result.Requests[1].Served);
        Assert.Contains("more KV pages than one request may hold", result.Requests[1].RejectReason);
        Assert.All(result.Requests.Skip(2), r => Assert.True(r.Served, r.RejectReason));
        Assert.Equal(pool - 80, result.LargestContextServed);
    }
}
