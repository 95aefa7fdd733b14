namespace Infinite.Simulation;

/// <summary>
/// Synthetic traces: Poisson arrivals (exponential gaps at a set rate) with lengths from a <see cref="LengthMix"/>.
/// The same seed always gives the same trace (a seeded <see cref="Random"/> is deterministic across runs and
/// platforms), so runs of different policies see identical requests.
/// </summary>
public static class SyntheticWorkload
{
    /// <summary>Draws <paramref name="count"/> requests arriving at <paramref name="ratePerSecond"/> on average
    /// (0 or infinity: all at time 0, the saturated case).</summary>
    public static IReadOnlyList<WorkloadRequest> Generate(LengthMix mix, double ratePerSecond, int count, int seed)
    {
        ArgumentNullException.ThrowIfNull(mix);
        mix.Validate();
        if (count < 1)
            throw new ArgumentException($"A workload needs at least one request, got {count}.", nameof(count));
        if (double.IsNaN(ratePerSecond) || ratePerSecond < 0)
            throw new ArgumentException($"The arrival rate must be >= 0 requests/s (0 = all at once), got {ratePerSecond}.", nameof(ratePerSecond));
        var random = new Random(seed);
        var requests = new WorkloadRequest[count];
        double time = 0;
        double logMin = Math.Log(mix.MinContext), logMax = Math.Log(mix.MaxContext);
        for (int i = 0; i < count; i++)
        {
            if (ratePerSecond > 0 && !double.IsPositiveInfinity(ratePerSecond))
                time += -Math.Log(1 - random.NextDouble()) / ratePerSecond;
            int context = (int)Math.Round(Math.Exp(logMin + random.NextDouble() * (logMax - logMin)));
            int output = random.Next(mix.MinOutput, mix.MaxOutput + 1);
            context = Math.Clamp(context, mix.MinContext, mix.MaxContext);
            if (mix.TailFraction > 0 && random.NextDouble() < mix.TailFraction)
                context = random.Next(mix.TailMin, mix.TailMax + 1);
            if (mix.IncludeMaximum && i == count / 2)
                context = mix.MaxContext;
            requests[i] = new WorkloadRequest(time, context - output, output);
        }
        return requests;
    }
}
