using Infinite.Simulation;

namespace Infinite.Tests.Simulation;

public sealed class SyntheticWorkloadTests
{
    [Fact]
    public void Poisson_arrivals_reach_the_set_mean_rate()
    {
        IReadOnlyList<WorkloadRequest> trace = SyntheticWorkload.Generate(LengthMix.Short, 5.0, 20_000, seed: 42);
        double rate = trace.Count / trace[^1].ArrivalSeconds;
        Assert.InRange(rate, 5.0 * 0.97, 5.0 * 1.03); // relative sd of the sum of 20,000 gaps is 0.7%
        double[] gaps = [.. trace.Zip(trace.Skip(1), (a, b) => b.ArrivalSeconds - a.ArrivalSeconds)];
        Assert.All(gaps, g => Assert.True(g >= 0));
        // Exponential gaps: the coefficient of variation is 1.
        double mean = gaps.Average(), sd = Math.Sqrt(gaps.Select(g => (g - mean) * (g - mean)).Average());
        Assert.InRange(sd / mean, 0.95, 1.05);
    }

    [Fact]
    public void Lengths_stay_in_the_mix_and_the_long_mix_holds_one_2000K_request()
    {
        IReadOnlyList<WorkloadRequest> shortTrace = SyntheticWorkload.Generate(LengthMix.Short, 1, 2000, seed: 1);
        Assert.All(shortTrace, r => Assert.InRange(r.TotalTokens, 1_000, 60_000));
        Assert.All(shortTrace, r => Assert.InRange(r.OutputTokens, 32, 512));
        IReadOnlyList<WorkloadRequest> longTrace = SyntheticWorkload.Generate(LengthMix.Long, 1, 100, seed: 1);
        Assert.Equal(2_000_000, longTrace.Max(r => r.TotalTokens));
        Assert.Equal(2_000_000, longTrace[50].TotalTokens);
        // Log-uniform: about half the requests fall under the geometric mean of the bounds (~45K).
        int under = longTrace.Count(r => r.TotalTokens < Math.Sqrt(1_000.0 * 2_000_000));
        Assert.InRange(under, 30, 70);
    }

    [Fact]
    public void The_mixed_workload_has_a_5_percent_tail_of_long_requests()
    {
        IReadOnlyList<WorkloadRequest> trace = SyntheticWorkload.Generate(LengthMix.Mixed, 1, 4000, seed: 2);
        int tail = trace.Count(r => r.TotalTokens >= 80_000);
        Assert.All(trace, r => Assert.True(r.TotalTokens is >= 1_000 and <= 4_000 or >= 80_000 and <= 110_000, $"{r.TotalTokens}"));
        Assert.InRange(tail, 4000 * 0.04, 4000 * 0.06);
        Assert.Same(LengthMix.Mixed, LengthMix.Parse(" MIXED "));
    }

    [Fact]
    public void The_same_seed_gives_the_same_trace_and_rate_zero_sends_everything_at_once()
    {
        Assert.Equal(SyntheticWorkload.Generate(LengthMix.Short, 3, 100, 9), SyntheticWorkload.Generate(LengthMix.Short, 3, 100, 9));
        Assert.NotEqual(SyntheticWorkload.Generate(LengthMix.Short, 3, 100, 9), SyntheticWorkload.Generate(LengthMix.Short, 3, 100, 10));
        Assert.All(SyntheticWorkload.Generate(LengthMix.Short, 0, 10, 1), r => Assert.Equal(0, r.ArrivalSeconds));
        Assert.Throws<ArgumentException>(() => SyntheticWorkload.Generate(LengthMix.Short, -1, 10, 1));
        Assert.Throws<ArgumentException>(() => SyntheticWorkload.Generate(LengthMix.Short, 1, 0, 1));
        Assert.Throws<ArgumentException>(() => LengthMix.Parse("medium"));
    }
}
