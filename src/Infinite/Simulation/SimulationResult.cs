namespace Infinite.Simulation;

/// <summary>
/// The outcome of one simulated run: every request's fate, KV utilisation over time, and the counters a report
/// needs. Throughput is served output tokens over the makespan (first arrival at 0 to the last completion), so
/// rejected requests earn nothing and waiting time counts.
/// </summary>
public sealed class SimulationResult
{
    public required string Policy { get; init; }
    public required ClusterLayout Layout { get; init; }
    /// <summary>Instances the policy ran (1 for the single-instance baseline).</summary>
    public required int Instances { get; init; }
    public required IReadOnlyList<RequestOutcome> Requests { get; init; }
    public required IReadOnlyList<UtilisationSample> Utilisation { get; init; }
    public required double MakespanSeconds { get; init; }
    public required long Steps { get; init; }
    public required long Events { get; init; }
    public required long PagesMigrated { get; init; }
    public required long Preemptions { get; init; }
    public required double BusySeconds { get; init; }
    /// <summary>How requests reached the instances (per-instance queues or one global queue).</summary>
    public DispatchMode Dispatch { get; init; } = DispatchMode.Global;

    public int Served => Requests.Count(r => r.Served);
    public int Rejected => Requests.Count(r => !r.Served);
    public long OutputTokens => Requests.Where(r => r.Served).Sum(r => (long)r.Request.OutputTokens);
    public long ProcessedTokens => Requests.Where(r => r.Served).Sum(r => r.Request.TotalTokens);

    /// <summary>Served output tokens per second of makespan.</summary>
    public double Throughput => MakespanSeconds > 0 ? OutputTokens / MakespanSeconds : 0;

    /// <summary>Served prompt and output tokens per second of makespan.</summary>
    public double TokenThroughput => MakespanSeconds > 0 ? ProcessedTokens / MakespanSeconds : 0;

    public double TtftP50 => Percentiles.Of(ServedValues(r => r.TimeToFirstToken), 50);
    public double TtftP99 => Percentiles.Of(ServedValues(r => r.TimeToFirstToken), 99);
    public double TpotP50 => Percentiles.Of(ServedValues(r => r.TimePerOutputToken), 50);
    public double TpotP99 => Percentiles.Of(ServedValues(r => r.TimePerOutputToken), 99);

    /// <summary>The longest context (prompt + output) of a served request, 0 when none was served.</summary>
    public long LargestContextServed => Requests.Where(r => r.Served).Select(r => r.Request.TotalTokens).DefaultIfEmpty(0).Max();

    /// <summary>Time-weighted mean KV utilisation over the makespan.</summary>
    public double MeanKvUtilisation
    {
        get
        {
            if (Utilisation.Count == 0 || MakespanSeconds <= 0)
                return 0;
            double area = 0;
            for (int i = 0; i + 1 < Utilisation.Count; i++)
                area += Utilisation[i].KvUtilisation * (Utilisation[i + 1].Seconds - Utilisation[i].Seconds);
            return area / MakespanSeconds;
        }
    }

    /// <summary>The most frequent reject reason (for summaries), or null.</summary>
    public string? TopRejectReason => Requests.Where(r => !r.Served && r.RejectReason is not null)
        .GroupBy(r => r.RejectReason!).OrderByDescending(g => g.Count()).Select(g => g.Key).FirstOrDefault();

    private IEnumerable<double> ServedValues(Func<RequestOutcome, double> f) => Requests.Where(r => r.Served).Select(f);
}
