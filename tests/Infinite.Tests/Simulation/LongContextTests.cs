using Infinite.Simulation;

namespace Infinite.Tests.Simulation;

/// <summary>The paper's longest request (2000K tokens) on 32 A100-80GB with the simulator's defaults.</summary>
public sealed class LongContextTests
{
    private static readonly WorkloadRequest[] TwoMillion = [new(0, 1_999_500, 500)];

    [Theory]
    [InlineData("7b")]
    [InlineData("70b")]
    public void A_2000K_token_request_is_served_with_default_settings_where_the_memory_holds_it(string model)
    {
        ClusterLayout layout = SimulationFixture.Layout(gpus: 32, model);
        Assert.True(layout.Instances * layout.TokensPerInstance > 2_000_000);
        SimulationResult result = SimulationFixture.Run("borrowing", layout, TwoMillion);
        Assert.True(result.Requests[0].Served, result.Requests[0].RejectReason);
        Assert.Equal(2_000_000, result.LargestContextServed);
    }

    [Fact]
    public void On_the_long_trace_borrowing_rejects_only_what_exceeds_the_whole_clusters_memory()
    {
        // 8 x 7B: 893K tokens of KV in all. Several requests of 100K-877K wait at once on different instances; with
        // their queues counted as demand each would wait for the others' instances to go idle, and nothing runs.
        ClusterLayout layout = SimulationFixture.Layout(gpus: 8);
        long cluster = layout.Instances * layout.TokensPerInstance;
        IReadOnlyList<WorkloadRequest> trace = SyntheticWorkload.Generate(LengthMix.Long, 0, 100, seed: 1);
        SimulationResult result = SimulationFixture.Run("borrowing", layout, trace);
        Assert.Contains(result.Requests, r => r.Served && r.Request.TotalTokens > layout.TokensPerInstance * 4);
        Assert.All(result.Requests.Where(r => !r.Served), r =>
        {
            Assert.True(r.Request.TotalTokens > cluster, $"{r.Request.TotalTokens} tokens rejected: {r.RejectReason}");
            Assert.Contains("more KV pages than one request may hold", r.RejectReason);
        });
        Assert.Contains(result.Requests, r => !r.Served);
    }

    [Fact]
    public void Thirteen_B_has_too_little_KV_memory_on_32_independent_instances_and_says_so()
    {
        ClusterLayout layout = SimulationFixture.Layout(gpus: 32, "13b");
        Assert.True(layout.Instances * layout.TokensPerInstance < 2_000_000); // 32 x 56,064 tokens
        SimulationResult result = SimulationFixture.Run("borrowing", layout, TwoMillion);
        Assert.False(result.Requests[0].Served);
        Assert.Contains("more KV pages than one request may hold", result.Requests[0].RejectReason);
    }

    [Fact]
    public void With_the_cap_applied_to_idle_lenders_too_7B_cannot_reach_2000K()
    {
        // Home pool + 31 x half a pool = 1,744 + 31 x 872 pages of 64 tokens = 1.84M tokens.
        SimulationResult result = SimulationFixture.Run("borrowing", SimulationFixture.Layout(gpus: 32), TwoMillion,
            new SimulationOptions { LendAllWhenIdle = false });
        Assert.False(result.Requests[0].Served);
        Assert.Contains("(28776 pages = 1841664 tokens)", result.Requests[0].RejectReason);
    }
}
