using Infinite.Simulation;

namespace Infinite.Tests.Simulation;

/// <summary>Small layouts and workloads that simulate in well under a second.</summary>
internal static class SimulationFixture
{
    public static ClusterLayout Layout(int gpus = 8, string model = "7b") =>
        SimulationRunner.Layout(ModelShape.Parse(model), DeviceProfile.A100, gpus);

    public static SimulationResult Run(string policy, ClusterLayout layout, IReadOnlyList<WorkloadRequest> workload,
        SimulationOptions? options = null, double lendingCap = 0.5)
    {
        options ??= new SimulationOptions();
        return new ClusterSimulator(SimulationPolicies.Create(policy, options, lendingCap), layout, workload, options).Run();
    }

    public static IReadOnlyList<WorkloadRequest> Short(int count = 60, double rate = 2, int seed = 7) =>
        SyntheticWorkload.Generate(LengthMix.Short, rate, count, seed);
}
