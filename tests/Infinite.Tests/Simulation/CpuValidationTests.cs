using System.CommandLine;
using System.Text.Json;
using Infinite.Cli;
using Infinite.Simulation;

namespace Infinite.Tests.Simulation;

/// <summary>
/// The plumbing of <c>infinite simulate --validate-cpu</c> (issue 8, item 4) with a fake engine runner that times
/// nothing: the trace both sides replay, the shared-host prediction, the comparison and its verdicts, the table and
/// the JSON. The real comparison is a bench (docs/PERFORMANCE.md, "Simulator vs real CPU instances").
/// </summary>
[Collection(nameof(CpuValidationTests))] // SimulateCommand.Runner is static
public sealed class CpuValidationTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("infinite-validate-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Reports the simulator's own prediction scaled by <see cref="Factor"/> (1: perfect, 2: twice as slow),
    /// and records the traces it was given.</summary>
    private sealed class FakeRunner(double factor) : ICpuEngineRunner
    {
        public double Factor { get; } = factor;
        public List<(int Instances, IReadOnlyList<WorkloadRequest> Trace)> Calls { get; } = [];

        public Task<RealRun> RunAsync(IReadOnlyList<WorkloadRequest> trace, int instances, CpuValidationOptions options,
            CancellationToken cancellationToken)
        {
            Calls.Add((instances, trace));
            int pages = CpuValidation.PagesPerInstance(options, instances);
            Prediction prediction = CpuValidation.PredictSteps(trace, instances, pages, options);
            SimulationResult p = prediction.Result;
            double ttft = p.Requests.Average(r => r.TimeToFirstToken);
            return Task.FromResult(new RealRun(instances, p.MakespanSeconds * Factor, p.Steps, p.BusySeconds * Factor,
                p.OutputTokens, ttft * Factor, pages)
            {
                DecodeSteps = prediction.DecodeSteps,
                DecodeStepSeconds = prediction.DecodeStepSeconds * Factor,
                PrefillTokensPerSecond = prediction.PrefillTokensPerSecond / Factor,
            });
        }
    }

    private static readonly CpuValidationOptions Small = new() { Requests = 6, MaxPrompt = 3000, Repeats = 1 };

    [Fact]
    public void The_workload_is_seeded_and_within_its_bounds()
    {
        IReadOnlyList<WorkloadRequest> a = CpuValidation.Workload(Small), b = CpuValidation.Workload(Small);
        Assert.Equal(a, b);
        Assert.NotEqual(a, CpuValidation.Workload(Small with { Seed = 2 }));
        Assert.All(a, r =>
        {
            Assert.Equal(0, r.ArrivalSeconds);
            Assert.InRange(r.PromptTokens, Small.MinPrompt, Small.MaxPrompt);
            Assert.InRange(r.OutputTokens, Small.MinOutput, Small.MaxOutput);
        });
        IReadOnlyList<WorkloadRequest> poisson = CpuValidation.Workload(Small with { Rate = 4 });
        Assert.True(poisson[^1].ArrivalSeconds > 0);
        Assert.Equal(poisson.Select(r => r.ArrivalSeconds).Order(), poisson.Select(r => r.ArrivalSeconds));
    }

    [Fact]
    public async Task Both_sides_replay_the_trace_file_and_a_perfect_runner_matches()
    {
        var runner = new FakeRunner(1.0);
        string trace = Path.Combine(_dir, "trace.csv");
        CpuValidationReport report = await CpuValidation.RunAsync(runner, Small with { Repeats = 3 }, trace);

        Assert.Equal(CpuValidation.Workload(Small), TraceFile.Read(trace));
        Assert.Equal(new[] { 1, 1, 1, 2, 2, 2 }, runner.Calls.Select(c => c.Instances));
        Assert.All(report.Rows, r => Assert.Equal(3, r.Runs.Count));
        Assert.All(runner.Calls, c => Assert.Equal(report.Trace, c.Trace));
        Assert.Equal(new[] { 1, 2 }, report.Rows.Select(r => r.Instances));
        Assert.True(report.TargetsMet);
        foreach (ValidationRow row in report.Rows)
        {
            Assert.Equal(Small.Requests, row.Predicted.Served);
            Assert.All(row.Metrics, m => Assert.Equal(0.0, m.RelativeError, 9));
        }
    }

    [Fact]
    public async Task A_runner_twice_as_slow_is_marked_as_a_miss()
    {
        CpuValidationReport report = await CpuValidation.RunAsync(new FakeRunner(2.0), Small, Path.Combine(_dir, "t.csv"));
        Assert.False(report.TargetsMet);
        ValidationMetric throughput = report.Rows[0].Metrics.Single(m => m.Name == "throughput");
        Assert.Equal(1.0, throughput.RelativeError, 9); // predicted twice the real tokens/s
        ValidationMetric step = report.Rows[0].Metrics.Single(m => m.Name == "mean step");
        Assert.Equal(-0.5, step.RelativeError, 9);
        string table = CpuValidation.Table(report);
        Assert.Contains("MISS (>20%)", table);
        Assert.Contains("+100.0%", table);
    }

    [Fact]
    public void The_median_run_by_makespan_is_compared()
    {
        RealRun Run(double makespan) => new(1, makespan, 10, makespan, 100, 0.1, 50);
        Assert.Equal(3.0, CpuValidation.Median([Run(5), Run(3), Run(1)]).MakespanSeconds);
        Assert.Equal(2.0, CpuValidation.Median([Run(4), Run(2), Run(1), Run(3)]).MakespanSeconds);
    }

    [Fact]
    public void A_prompt_longer_than_its_home_borrows_on_the_other_instance()
    {
        // 3,001 tokens need 47 pages; a home has 32 and may borrow the other's lending cap (16).
        SimulationResult shared = CpuValidation.Predict([new(0, 3000, 16)], 2, 32, new CpuValidationOptions());
        Assert.Equal(1, shared.Served);
        Assert.Equal(17, shared.Steps); // 2 prefill chunks (2,048 + 952 tokens, the first token with the second) + 15 decodes
    }

    [Fact]
    public void Instances_on_a_shared_host_step_together_and_share_the_cores()
    {
        WorkloadRequest[] trace = [new(0, 1000, 16), new(0, 1000, 16)];
        SimulationResult shared = CpuValidation.Predict(trace, 2, 48, new CpuValidationOptions());
        ClusterLayout layout = SimulationRunner.Layout(ModelShape.Demo12M, DeviceProfile.Cpu, 2, Interconnect.SharedMemory, 1)
            with { KvPagesPerInstance = 48 };
        var separate = new SimulationOptions { MigrationTokensPerStep = 0 };
        SimulationResult apart = new ClusterSimulator(SimulationPolicies.Create("borrowing", separate, 0.5), layout, trace, separate).Run();
        Assert.Equal(2, shared.Served);
        Assert.Equal(2, apart.Served);
        // One home each: on separate devices each instance runs its own 16 steps side by side; on one host the cluster
        // runs 16 steps of both requests, each as long as the two instances' parts together.
        Assert.Equal(16, shared.Steps);
        Assert.Equal(32, apart.Steps);
        Assert.Equal(2 * apart.MakespanSeconds, shared.MakespanSeconds, 9);
    }

    [Fact]
    public void The_cli_prints_the_table_and_writes_json_with_exit_code_0_even_on_a_miss()
    {
        ICpuEngineRunner saved = SimulateCommand.Runner;
        SimulateCommand.Runner = new FakeRunner(2.0);
        try
        {
            string json = Path.Combine(_dir, "v.json");
            string trace = Path.Combine(_dir, "v.csv");
            var output = new StringWriter();
            var error = new StringWriter();
            int code = CliApp.CreateRoot().Parse(new[] { "simulate", "--validate-cpu", "--requests", "4", "--validate-repeats", "2", "--json", json, "--save-trace", trace })
                .Invoke(new InvocationConfiguration { Output = output, Error = error });
            Assert.True(code == 0, error.ToString());
            Assert.Contains("throughput tok/s", output.ToString());
            Assert.Contains("MISS", output.ToString());
            Assert.Contains("median of 2 real runs", output.ToString());
            Assert.Equal(4, TraceFile.Read(trace).Count);
            using JsonDocument doc = JsonDocument.Parse(File.ReadAllText(json));
            Assert.False(doc.RootElement.GetProperty("targets_met").GetBoolean());
            JsonElement runs = doc.RootElement.GetProperty("runs");
            Assert.Equal(2, runs.GetArrayLength());
            Assert.Equal(2, runs[1].GetProperty("instances").GetInt32());
        }
        finally
        {
            SimulateCommand.Runner = saved;
        }
    }
}
