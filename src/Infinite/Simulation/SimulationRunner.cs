namespace Infinite.Simulation;

/// <summary>Builds layouts and runs every policy of a scenario on the same workload (what the CLI and the tests
/// share).</summary>
public static class SimulationRunner
{
    /// <summary>A layout of <paramref name="gpus"/> devices for a model, with the default instance size
    /// (<see cref="ClusterLayout.DefaultGpusPerInstance"/>) and the device's default interconnect unless given.</summary>
    public static ClusterLayout Layout(ModelShape model, DeviceProfile device, int gpus, Interconnect? interconnect = null,
        int? gpusPerInstance = null, int pageTokens = 64)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(device);
        var layout = new ClusterLayout
        {
            Model = model,
            Device = device,
            Interconnect = interconnect ?? Interconnect.For(device),
            Gpus = gpus,
            GpusPerInstance = gpusPerInstance ?? ClusterLayout.DefaultGpusPerInstance(model, device),
            PageTokens = pageTokens,
        };
        layout.Validate();
        return layout;
    }

    /// <summary>Runs each policy on the workload; <paramref name="progress"/> gets (policy, done, total, seconds).</summary>
    public static Scenario Run(ClusterLayout layout, string workloadName, IReadOnlyList<WorkloadRequest> workload,
        IReadOnlyList<SimulationPolicy> policies, SimulationOptions options, Action<string, int, int, double>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(layout);
        ArgumentNullException.ThrowIfNull(policies);
        ArgumentNullException.ThrowIfNull(options);
        var results = new List<SimulationResult>();
        foreach (SimulationPolicy policy in policies)
        {
            SimulationOptions run = progress is null ? options
                : options with { Progress = (done, total, seconds) => progress(policy.Name, done, total, seconds) };
            results.Add(new ClusterSimulator(policy, layout, workload, run).Run());
        }
        return new Scenario(layout.Model.Name, layout.Gpus, workloadName, results);
    }
}
