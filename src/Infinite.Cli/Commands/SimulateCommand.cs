using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Infinite.Simulation;
using Spectre.Console;

namespace Infinite.Cli;

/// <summary>
/// <c>infinite simulate</c>: runs the cluster scheduler (static / borrowing / single-instance policies, and the ideal
/// and ideal-instances upper bounds) against the roofline cost model on a simulated cluster, for one or several models and cluster sizes,
/// and prints a table or writes a report (markdown + SVG charts).
/// </summary>
internal static class SimulateCommand
{
    /// <summary>The real side of <c>--validate-cpu</c> (tests substitute a fake that times nothing).</summary>
    internal static ICpuEngineRunner Runner { get; set; } = new DemoEngineRunner();

    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Model shape(s): 7b, 13b, 70b (Llama-2) or demo-12m (the CPU bench model), comma-separated.", DefaultValueFactory = _ => "7b" };
        var gpus = new Option<string>("--gpus") { Description = "Simulated GPUs, comma-separated (e.g. 8,16,32).", DefaultValueFactory = _ => "32" };
        var device = new Option<string>("--device") { Description = "Device profile: a100, h100 or cpu.", DefaultValueFactory = _ => "a100" };
        var perInstance = new Option<int?>("--gpus-per-instance") { Description = "GPUs per instance (tensor-parallel group); default: the fewest that fit the weights (7b/13b: 1, 70b: 4 on 80 GB)." };
        var trace = new Option<string?>("--trace") { Description = "Replay a trace file (CSV: arrival_seconds,prompt_tokens,output_tokens)." };
        var workload = new Option<string>("--workload") { Description = "Synthetic workload: short (1K-60K tokens), long (1K-2000K, one at 2000K) or mixed (95% 1K-4K, 5% 80K-110K).", DefaultValueFactory = _ => "short" };
        var rate = new Option<double>("--rate") { Description = "Poisson arrival rate in requests/s (0: all arrive at once, the saturated case).", DefaultValueFactory = _ => 0 };
        var requests = new Option<int>("--requests") { Description = "Requests in the synthetic workload.", DefaultValueFactory = _ => 200 };
        var seed = new Option<int>("--seed") { Description = "Seed of the synthetic workload.", DefaultValueFactory = _ => 1 };
        var policy = new Option<string>("--policy") { Description = "borrowing, static, single, ideal (the upper bound of any placement: one pooled instance, weights once, free communication), ideal-instances (the upper bound of any placement over the independent instances: their pooled KV pages, N weight copies read per step, free communication) or all (comma-separated).", DefaultValueFactory = _ => "all" };
        var report = new Option<string?>("--report") { Description = "Write report.md and SVG charts into this directory." };
        var saveTrace = new Option<string?>("--save-trace") { Description = "Also write the synthetic workload as a trace file." };
        var pageTokens = new Option<int>("--page-tokens") { Description = "Tokens per KV page.", DefaultValueFactory = _ => 64 };
        var batchTokens = new Option<int>("--batch-tokens") { Description = "Token budget per instance step (chunked prefill).", DefaultValueFactory = _ => 2048 };
        var lendingCap = new Option<double>("--lending-cap") { Description = "Fraction of an instance's pages it may lend (rManager cap).", DefaultValueFactory = _ => 0.5 };
        var nvlink = new Option<double?>("--nvlink-gbps") { Description = "NVLink bandwidth per GPU and direction, GB/s (default: the device's)." };
        var nvlinkLatency = new Option<double?>("--nvlink-latency-us") { Description = "NVLink message latency, microseconds." };
        var ib = new Option<double?>("--ib-gbps") { Description = "InfiniBand bandwidth per GPU and direction, GB/s." };
        var ibLatency = new Option<double?>("--ib-latency-us") { Description = "InfiniBand message latency, microseconds." };
        var gpusPerNode = new Option<int?>("--gpus-per-node") { Description = "GPUs per node (NVLink domain); default 8." };
        var migration = new Option<int>("--migration-tokens") { Description = "KV tokens a request may migrate per decode step (the paper: 16 hide fully).", DefaultValueFactory = _ => 16 };
        var dispatch = new Option<string>("--dispatch") { Description = "How requests reach instances: arrival (a least-loaded balancer picks an instance on arrival; per-instance queues, as the paper's servers), round-robin (the same, dealt in turn) or global (one cluster-wide queue, late binding, as the engine).", DefaultValueFactory = _ => "arrival" };
        var placement = new Option<string>("--borrow-placement") { Description = "How a borrowing request's pages split: spread (balanced over its home and the fewest creditors that hold them) or home-first (home's free pages, then each creditor to its cap).", DefaultValueFactory = _ => "spread" };
        var strictCap = new Option<bool>("--strict-lending-cap") { Description = "Apply the lending cap also to idle instances (default: an instance with no demand of its own lends all its free pages)." };
        var borrowFromAny = new Option<bool>("--borrow-from-any") { Description = "Let a growing request borrow from any instance under its lending cap (default: only from creditors, instances below the greedy plan's 70% utilisation)." };
        var planEvery = new Option<int>("--plan-every") { Description = "Steps per instance between gManager move plans.", DefaultValueFactory = _ => 32 };
        var validateCpu = new Option<bool>("--validate-cpu") { Description = "Run a small seeded trace on the real engine (demo model, 1 and 2 in-process CPU instances) and through the simulator (cpu profile, demo-12m, shared host), and compare throughput and step time (issue 8, item 4). Honours --requests (default 8 here), --seed, --rate, --page-tokens, --batch-tokens, --lending-cap, --save-trace." };
        var validateInstances = new Option<string>("--validate-instances") { Description = "Instance counts for --validate-cpu, comma-separated.", DefaultValueFactory = _ => "1,2" };
        var repeats = new Option<int>("--validate-repeats") { Description = "Real runs per instance count for --validate-cpu; the median (by makespan) is compared.", DefaultValueFactory = _ => 5 };
        var json = new Option<string?>("--json") { Description = "With --validate-cpu: also write the figures as JSON to this file." };

        var command = new Command("simulate", "Simulate the cluster scheduler (static, borrowing, single-instance) on a cost model of many GPUs.");
        foreach (Option option in new Option[] { model, gpus, device, perInstance, trace, workload, rate, requests, seed, policy, report, saveTrace,
            pageTokens, batchTokens, lendingCap, nvlink, nvlinkLatency, ib, ibLatency, gpusPerNode, migration, planEvery, dispatch, placement, strictCap, borrowFromAny,
            validateCpu, validateInstances, repeats, json })
        {
            command.Options.Add(option);
        }
        command.SetAction((result, cancellationToken) => result.GetValue(validateCpu)
            ? ValidateAsync(result, cancellationToken)
            : Task.FromResult(Execute(result, cancellationToken)));
        return command;

        async Task<int> ValidateAsync(ParseResult result, CancellationToken cancellationToken)
        {
            TextWriter output = result.InvocationConfiguration.Output;
            TextWriter error = result.InvocationConfiguration.Error;
            try
            {
                var options = new CpuValidationOptions
                {
                    Requests = result.GetResult(requests) is { Implicit: false } ? result.GetValue(requests) : 8,
                    Seed = result.GetValue(seed),
                    Rate = result.GetValue(rate),
                    PageTokens = result.GetValue(pageTokens),
                    MaxBatchTokens = result.GetValue(batchTokens),
                    LendingCap = result.GetValue(lendingCap),
                    Repeats = result.GetValue(repeats),
                    Instances = [.. Split(result.GetValue(validateInstances)!, "--validate-instances").Select(n => ParsePositive(n, "--validate-instances"))],
                };
                options.Validate();
                string tracePath = result.GetValue(saveTrace) ?? Path.Combine(Path.GetTempPath(), "infinite-validate-cpu.csv");
                CpuValidationReport report = await CpuValidation.RunAsync(Runner, options, tracePath, error.WriteLine, cancellationToken).ConfigureAwait(false);
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"simulator vs real CPU engine: demo-12m, {report.Trace.Count} requests ({report.Trace.Sum(r => (long)r.PromptTokens)} prompt + {report.Trace.Sum(r => (long)r.OutputTokens)} output tokens), trace {tracePath}, KV {options.KvMemoryBytes >> 20} MiB split over the instances, {Environment.ProcessorCount} cores"));
                output.Write(CpuValidation.Table(report));
                foreach (ValidationRow row in report.Rows.Where(r => r.Runs.Count > 1))
                {
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{row.Instances} instance(s): median of {row.Runs.Count} real runs; throughput {row.Runs.Min(r => r.Throughput):0}-{row.Runs.Max(r => r.Throughput):0} tok/s, mean step {row.Runs.Min(r => r.MeanStepSeconds) * 1e3:0.0}-{row.Runs.Max(r => r.MeanStepSeconds) * 1e3:0.0} ms across runs"));
                }
                output.WriteLine(report.TargetsMet
                    ? string.Create(CultureInfo.InvariantCulture, $"throughput and mean step time within {options.Tolerance * 100:0}% for every instance count")
                    : string.Create(CultureInfo.InvariantCulture, $"MISS: some throughput or step-time prediction is off by more than {options.Tolerance * 100:0}%"));
                if (result.GetValue(json) is { } jsonPath)
                {
                    using FileStream file = File.Create(jsonPath);
                    report.WriteJson(file);
                    output.WriteLine($"json: {jsonPath}");
                }
                return 0;
            }
            catch (OperationCanceledException)
            {
                error.WriteLine("cancelled");
                return 130;
            }
            catch (Exception e) when (e is ArgumentException or IOException or FormatException or UnauthorizedAccessException or InvalidDataException or Native.InfiniteException)
            {
                error.WriteLine($"error: {e.Message}");
                return 1;
            }
        }

        int Execute(ParseResult result, CancellationToken cancellationToken)
        {
            TextWriter output = result.InvocationConfiguration.Output;
            TextWriter error = result.InvocationConfiguration.Error;
            try
            {
                DeviceProfile profile = DeviceProfile.Parse(result.GetValue(device)!);
                Interconnect links = Interconnect.For(profile);
                links = links with
                {
                    GpusPerNode = result.GetValue(gpusPerNode) ?? links.GpusPerNode,
                    IntraNode = new Link((result.GetValue(nvlink) * 1e9) ?? links.IntraNode.Bandwidth,
                        (result.GetValue(nvlinkLatency) * 1e-6) ?? links.IntraNode.LatencySeconds),
                    InterNode = new Link((result.GetValue(ib) * 1e9) ?? links.InterNode.Bandwidth,
                        (result.GetValue(ibLatency) * 1e-6) ?? links.InterNode.LatencySeconds),
                };
                links.Validate();
                ModelShape[] models = [.. Split(result.GetValue(model)!, "--model").Select(ModelShape.Parse)];
                int[] gpuCounts = [.. Split(result.GetValue(gpus)!, "--gpus").Select(g => ParsePositive(g, "--gpus"))];
                var options = new SimulationOptions
                {
                    MaxBatchTokens = result.GetValue(batchTokens),
                    MigrationTokensPerStep = result.GetValue(migration),
                    PlanEverySteps = result.GetValue(planEvery),
                    Dispatch = DispatchModes.Parse(result.GetValue(dispatch)!),
                    SpreadBorrowing = result.GetValue(placement)!.Trim().ToLowerInvariant() switch
                    {
                        "spread" => true,
                        "home-first" => false,
                        string other => throw new ArgumentException($"--borrow-placement: unknown '{other}', expected spread or home-first."),
                    },
                    LendAllWhenIdle = !result.GetValue(strictCap),
                    BorrowOnlyFromCreditors = !result.GetValue(borrowFromAny),
                    Cancellation = cancellationToken,
                };
                options.Validate();
                IReadOnlyList<SimulationPolicy> policies = SimulationPolicies.Parse(result.GetValue(policy)!, options, result.GetValue(lendingCap));

                string? tracePath = result.GetValue(trace);
                IReadOnlyList<WorkloadRequest> load;
                string workloadName;
                if (tracePath is not null)
                {
                    load = TraceFile.Read(tracePath);
                    workloadName = Path.GetFileNameWithoutExtension(tracePath);
                    if (load.Count == 0)
                        throw new ArgumentException($"{tracePath}: the trace has no requests.");
                }
                else
                {
                    LengthMix mix = LengthMix.Parse(result.GetValue(workload)!);
                    load = SyntheticWorkload.Generate(mix, result.GetValue(rate), result.GetValue(requests), result.GetValue(seed));
                    workloadName = mix.Name;
                }
                if (result.GetValue(saveTrace) is { } savePath)
                    TraceFile.Write(savePath, load);

                var scenarios = new List<Scenario>();
                var clock = Stopwatch.StartNew();
                TimeSpan lastProgress = TimeSpan.Zero;
                foreach (ModelShape m in models)
                {
                    foreach (int g in gpuCounts)
                    {
                        ClusterLayout layout = SimulationRunner.Layout(m, profile, g, links, result.GetValue(perInstance), result.GetValue(pageTokens));
                        error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                            $"simulating {m.Name} on {g} x {profile.Name}: {layout.Instances} instances of {layout.GpusPerInstance} GPU(s), {layout.TokensPerInstance} KV tokens each; {load.Count} requests ({workloadName}); dispatch {DispatchModes.Name(options.Dispatch)}"));
                        scenarios.Add(SimulationRunner.Run(layout, workloadName, load, policies, options, (name, done, total, seconds) =>
                        {
                            if (clock.Elapsed - lastProgress < TimeSpan.FromSeconds(2) && done < total)
                                return;
                            lastProgress = clock.Elapsed;
                            error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                                $"  {m.Name} x{g} {name}: {done}/{total} requests done, {seconds:0.0} s simulated, {clock.Elapsed.TotalSeconds:0} s elapsed"));
                        }));
                    }
                }

                if (result.GetValue(report) is { } directory)
                {
                    IReadOnlyList<string> files = ReportWriter.Write(directory, scenarios, "infinite " + string.Join(' ', result.Tokens.Select(t => t.Value)));
                    WriteTable(CreateConsole(output), scenarios);
                    output.WriteLine($"report: {files[0]} (+{files.Count - 1} SVG charts)");
                }
                else
                {
                    WriteTable(CreateConsole(output), scenarios);
                }
                return 0;
            }
            catch (OperationCanceledException)
            {
                error.WriteLine("cancelled");
                return 130;
            }
            catch (Exception e) when (e is ArgumentException or IOException or FormatException or UnauthorizedAccessException)
            {
                error.WriteLine($"error: {e.Message}");
                return 1;
            }
        }
    }

    private static void WriteTable(IAnsiConsole console, IReadOnlyList<Scenario> scenarios)
    {
        var table = new Table().Border(TableBorder.Simple);
        foreach (string column in new[] { "scenario", "policy", "inst x GPU", "served/rej", "tok/s", "vs static", "vs ideal-inst", "vs ideal", "TTFT p50/p99 s", "TPOT p50/p99 ms", "largest ctx", "KV use" })
            table.AddColumn(column);
        foreach (Scenario s in scenarios)
        {
            foreach (SimulationResult r in s.Results)
            {
                double ratio = s.Ratio(r.Policy, "static");
                double toInstances = s.Ratio(r.Policy, "ideal-instances");
                double toIdeal = s.Ratio(r.Policy, "ideal");
                table.AddRow(
                    Markup.Escape($"{s.Label} {s.Workload}"),
                    r.Policy,
                    $"{r.Instances}x{r.Layout.GpusPerInstance}",
                    $"{r.Served}/{r.Rejected}",
                    Invariant($"{r.Throughput:0.0}"),
                    double.IsFinite(ratio) ? Invariant($"{ratio:0.00}x") : "-",
                    double.IsFinite(toInstances) ? Invariant($"{toInstances:0.00}x") : "-",
                    double.IsFinite(toIdeal) ? Invariant($"{toIdeal:0.00}x") : "-",
                    Invariant($"{r.TtftP50:0.00}/{r.TtftP99:0.00}"),
                    Invariant($"{r.TpotP50 * 1e3:0.0}/{r.TpotP99 * 1e3:0.0}"),
                    r.LargestContextServed.ToString(CultureInfo.InvariantCulture),
                    Invariant($"{r.MeanKvUtilisation * 100:0}%"));
            }
        }
        console.Write(table);
    }

    private static IEnumerable<string> Split(string text, string option)
    {
        string[] parts = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (parts.Length == 0)
            throw new ArgumentException($"{option}: no value given.");
        return parts;
    }

    private static int ParsePositive(string text, string option) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int value) && value > 0
            ? value
            : throw new ArgumentException($"{option}: '{text}' is not a positive whole number.");

    private static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

    /// <summary>Spectre on the command's writer: colours on a terminal, plain text when redirected or captured.</summary>
    private static IAnsiConsole CreateConsole(TextWriter output)
    {
        bool terminal = ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected;
        IAnsiConsole console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output),
            Ansi = terminal ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = terminal ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
        });
        if (!terminal)
            console.Profile.Width = 200; // the table is wide; captured output should not wrap it
        return console;
    }
}
