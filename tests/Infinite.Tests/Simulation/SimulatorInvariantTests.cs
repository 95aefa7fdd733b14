using Infinite.Simulation;

namespace Infinite.Tests.Simulation;

/// <summary>What every run of the event engine must satisfy, whatever the policy.</summary>
public sealed class SimulatorInvariantTests
{
    [Theory]
    [InlineData("static")]
    [InlineData("borrowing")]
    [InlineData("single")]
    public void Every_request_finishes_or_is_rejected_with_a_reason_and_time_never_goes_backwards(string policy)
    {
        IReadOnlyList<WorkloadRequest> workload = SimulationFixture.Short();
        // One request no instance of 8 x A100 can hold alone (7B: ~111K tokens per GPU) and one nobody can hold.
        var requests = workload.ToList();
        requests.Insert(10, new WorkloadRequest(requests[9].ArrivalSeconds, 300_000, 8));
        requests.Insert(20, new WorkloadRequest(requests[19].ArrivalSeconds, 20_000_000, 8));
        SimulationResult result = SimulationFixture.Run(policy, SimulationFixture.Layout(), requests);

        Assert.Equal(requests.Count, result.Requests.Count);
        foreach (RequestOutcome r in result.Requests)
        {
            if (r.Served)
            {
                Assert.Null(r.RejectReason);
                Assert.True(r.TimeToFirstToken > 0, $"request {r.Index}: TTFT {r.TimeToFirstToken}");
                Assert.True(r.Completion >= r.TimeToFirstToken, $"request {r.Index}: completes before its first token");
                Assert.True(r.Request.ArrivalSeconds + r.Completion <= result.MakespanSeconds + 1e-9);
                if (r.Request.OutputTokens > 1)
                    Assert.True(r.TimePerOutputToken > 0);
            }
            else
            {
                Assert.False(string.IsNullOrWhiteSpace(r.RejectReason), $"request {r.Index} rejected without a reason");
            }
        }
        Assert.False(result.Requests[20].Served);
        Assert.Contains("KV pages", result.Requests[20].RejectReason);
        for (int k = 1; k < result.Utilisation.Count; k++)
        {
            Assert.True(result.Utilisation[k].Seconds >= result.Utilisation[k - 1].Seconds, "utilisation samples go back in time");
            Assert.InRange(result.Utilisation[k].KvUtilisation, 0, 1);
        }
        Assert.Equal(0, result.Utilisation[^1].KvUtilisation); // every page returned at the end
    }

    [Fact]
    public void Throughput_is_served_output_tokens_over_the_makespan()
    {
        SimulationResult result = SimulationFixture.Run("borrowing", SimulationFixture.Layout(), SimulationFixture.Short(40));
        long tokens = result.Requests.Where(r => r.Served).Sum(r => (long)r.Request.OutputTokens);
        Assert.Equal(40, result.Served);
        Assert.Equal(tokens, result.OutputTokens);
        Assert.Equal(tokens / result.MakespanSeconds, result.Throughput, 9);
        double lastCompletion = result.Requests.Max(r => r.Request.ArrivalSeconds + r.Completion);
        Assert.Equal(lastCompletion, result.MakespanSeconds, 9);
        Assert.True(result.BusySeconds > 0 && result.Steps > 0);
    }

    [Fact]
    public void Runs_are_deterministic()
    {
        ClusterLayout layout = SimulationFixture.Layout();
        SimulationResult a = SimulationFixture.Run("borrowing", layout, SimulationFixture.Short(30));
        SimulationResult b = SimulationFixture.Run("borrowing", layout, SimulationFixture.Short(30));
        Assert.Equal(a.MakespanSeconds, b.MakespanSeconds);
        Assert.Equal(a.Requests.Select(r => r.Completion), b.Requests.Select(r => r.Completion));
    }
}
