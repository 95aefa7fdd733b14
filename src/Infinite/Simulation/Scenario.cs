namespace Infinite.Simulation;

/// <summary>One simulated setup (model, GPUs, workload) and the result of each policy on it, in the order run.</summary>
public sealed record Scenario(string Model, int Gpus, string Workload, IReadOnlyList<SimulationResult> Results)
{
    /// <summary>"7b x 32 GPUs" for tables and chart categories.</summary>
    public string Label => $"{Model} x{Gpus}";

    /// <summary>The result of a policy, or null when it was not run.</summary>
    public SimulationResult? Of(string policy) => Results.FirstOrDefault(r => r.Policy == policy);

    /// <summary>Throughput of <paramref name="policy"/> over that of <paramref name="baseline"/> (NaN when either is
    /// missing or the baseline served nothing).</summary>
    public double Ratio(string policy, string baseline)
    {
        double a = Of(policy)?.Throughput ?? double.NaN, b = Of(baseline)?.Throughput ?? double.NaN;
        return b > 0 ? a / b : double.NaN;
    }
}
