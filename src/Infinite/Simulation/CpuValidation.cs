using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Infinite.Engine;

namespace Infinite.Simulation;

/// <summary>
/// What the CPU validation runs (issue 8, item 4): a small seeded workload replayed on the real engine (the demo
/// model, <see cref="InfiniteOptions.Instances"/> in-process instances) and through the simulator (CPU profile,
/// demo-12m shape, the same batching limits and KV pages per instance, shared-host lockstep), compared within
/// <see cref="Tolerance"/>.
/// </summary>
public sealed record CpuValidationOptions
{
    /// <summary>Requests in the workload.</summary>
    public int Requests { get; init; } = 8;
    public int Seed { get; init; } = 1;
    /// <summary>Prompt lengths, log-uniform between these bounds.</summary>
    public int MinPrompt { get; init; } = 300;
    public int MaxPrompt { get; init; } = 3500;
    /// <summary>Output tokens, uniform between these bounds (EOS ignored, so exactly this many).</summary>
    public int MinOutput { get; init; } = 16;
    public int MaxOutput { get; init; } = 64;
    /// <summary>Poisson arrival rate in requests/s; 0: all at time 0.</summary>
    public double Rate { get; init; }
    /// <summary>Instance counts to compare (in-process instances of the real engine, simulated instances).</summary>
    public IReadOnlyList<int> Instances { get; init; } = [1, 2];
    public int PageTokens { get; init; } = 64;
    public int MaxBatchTokens { get; init; } = 2048;
    public int MaxRunningRequests { get; init; } = 64;
    /// <summary>KV memory of the whole engine, split evenly over its instances (12 MiB: 84 pages of 64 bf16 tokens of
    /// the demo model in the native pool, 42 per instance with 2, so a prompt over 2.7K tokens borrows on the other
    /// instance and the 8 requests do not all fit at once).</summary>
    public long KvMemoryBytes { get; init; } = 12L << 20;
    /// <summary>Lending cap of every rManager, on both sides.</summary>
    public double LendingCap { get; init; } = new Cluster.RManagerOptions().LendingCap;
    /// <summary>Real runs per instance count; the one with the median makespan is compared (a 2-core machine's
    /// runs of a few seconds vary by tens of percent from one to the next, the simulator not at all).</summary>
    public int Repeats { get; init; } = 5;
    /// <summary>Relative error a prediction may have (0.2: the issue's 20%).</summary>
    public double Tolerance { get; init; } = 0.2;

    public void Validate()
    {
        if (Requests < 1)
            throw new ArgumentException($"The validation needs at least one request, got {Requests}.");
        if (MinPrompt < 1 || MaxPrompt < MinPrompt)
            throw new ArgumentException($"Prompt lengths need 1 <= min <= max, got {MinPrompt}-{MaxPrompt}.");
        if (MinOutput < 1 || MaxOutput < MinOutput)
            throw new ArgumentException($"Output lengths need 1 <= min <= max, got {MinOutput}-{MaxOutput}.");
        if (double.IsNaN(Rate) || Rate < 0)
            throw new ArgumentException($"The arrival rate must be >= 0, got {Rate}.");
        if (Instances.Count == 0 || Instances.Any(n => n < 1))
            throw new ArgumentException("Instance counts must be >= 1.");
        if (KvMemoryBytes < 1 || PageTokens < 1 || MaxBatchTokens < 1 || MaxRunningRequests < 1)
            throw new ArgumentException("KV memory, page size, batch tokens and running requests must be positive.");
        if (Repeats < 1)
            throw new ArgumentException($"Repeats must be >= 1, got {Repeats}.");
        if (!(Tolerance > 0))
            throw new ArgumentException($"The tolerance must be > 0, got {Tolerance}.");
    }
}

/// <summary>What a real engine run measured: wall-clock makespan (first submission to last token), steps and their
/// summed durations (the engine's <see cref="StepCompletedEventArgs.Duration"/>), tokens generated, mean time to
/// first token, and the KV pages each instance's pool got (the simulator replays exactly that many).</summary>
public sealed record RealRun(
    int Instances,
    double MakespanSeconds,
    long Steps,
    double StepSeconds,
    long OutputTokens,
    double MeanTtftSeconds,
    int PagesPerInstance)
{
    /// <summary>Steps that only decoded, and their summed durations (where the step-time error lies).</summary>
    public long DecodeSteps { get; init; }
    public double DecodeStepSeconds { get; init; }
    public double MeanDecodeStepSeconds => DecodeSteps > 0 ? DecodeStepSeconds / DecodeSteps : double.NaN;
    /// <summary>Requests the engine preempted (pages given back, recomputed later) during the run.</summary>
    public long Preemptions { get; init; }
    /// <summary>Prefill tokens over the summed durations of the steps that carried prefill chunks.</summary>
    public double PrefillTokensPerSecond { get; init; } = double.NaN;

    public double Throughput => MakespanSeconds > 0 ? OutputTokens / MakespanSeconds : 0;
    public double MeanStepSeconds => Steps > 0 ? StepSeconds / Steps : 0;
}

/// <summary>Runs a trace on a real engine (the validation's seam: the tests pass a fake that times nothing).</summary>
public interface ICpuEngineRunner
{
    Task<RealRun> RunAsync(IReadOnlyList<WorkloadRequest> trace, int instances, CpuValidationOptions options,
        CancellationToken cancellationToken);
}

/// <summary>One compared figure: real, predicted and the relative error (predicted - real) / real.</summary>
public sealed record ValidationMetric(string Name, string Unit, double Real, double Predicted, bool Target)
{
    public double RelativeError => Real != 0 ? (Predicted - Real) / Real : double.NaN;
    public bool Within(double tolerance) => Math.Abs(RelativeError) <= tolerance;
}

/// <summary>One instance count: the real run compared (the median of <see cref="Runs"/> by makespan), every real run,
/// the simulated one, and the compared figures.</summary>
public sealed record ValidationRow(int Instances, RealRun Real, SimulationResult Predicted, IReadOnlyList<ValidationMetric> Metrics)
{
    public IReadOnlyList<RealRun> Runs { get; init; } = [];
}

/// <summary>A simulated run with the same per-step split as <see cref="RealRun"/> (decode-only steps, prefill rate).</summary>
public sealed record Prediction(SimulationResult Result, long DecodeSteps, double DecodeStepSeconds, double PrefillTokensPerSecond)
{
    public double MeanDecodeStepSeconds => DecodeSteps > 0 ? DecodeStepSeconds / DecodeSteps : double.NaN;
}

/// <summary>The validation's outcome.</summary>
public sealed record CpuValidationReport(CpuValidationOptions Options, string TracePath, IReadOnlyList<WorkloadRequest> Trace,
    IReadOnlyList<ValidationRow> Rows)
{
    /// <summary>True when every target figure (throughput and mean step time) is within the tolerance.</summary>
    public bool TargetsMet => Rows.All(r => r.Metrics.Where(m => m.Target).All(m => m.Within(Options.Tolerance)));

    /// <summary>The figures as JSON (options, trace, and per instance count the real and predicted values).</summary>
    public void WriteJson(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        json.WriteStartObject();
        json.WriteString("device", DeviceProfile.Cpu.Description);
        json.WriteString("model", ModelShape.Demo12M.Name);
        json.WriteString("trace", TracePath);
        json.WriteNumber("requests", Trace.Count);
        json.WriteNumber("prompt_tokens", Trace.Sum(r => (long)r.PromptTokens));
        json.WriteNumber("output_tokens", Trace.Sum(r => (long)r.OutputTokens));
        json.WriteNumber("kv_memory_bytes", Options.KvMemoryBytes);
        json.WriteNumber("page_tokens", Options.PageTokens);
        json.WriteNumber("max_batch_tokens", Options.MaxBatchTokens);
        json.WriteNumber("tolerance", Options.Tolerance);
        json.WriteBoolean("targets_met", TargetsMet);
        json.WriteStartArray("runs");
        foreach (ValidationRow row in Rows)
        {
            json.WriteStartObject();
            json.WriteNumber("instances", row.Instances);
            json.WriteNumber("pages_per_instance", row.Real.PagesPerInstance);
            json.WriteNumber("real_steps", row.Real.Steps);
            json.WriteNumber("predicted_steps", row.Predicted.Steps);
            json.WriteNumber("real_preemptions", row.Real.Preemptions);
            json.WriteStartArray("real_runs");
            foreach (RealRun run in row.Runs)
            {
                json.WriteStartObject();
                json.WriteNumber("makespan_s", run.MakespanSeconds);
                json.WriteNumber("throughput", run.Throughput);
                json.WriteNumber("mean_step_ms", run.MeanStepSeconds * 1e3);
                json.WriteNumber("steps", run.Steps);
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteNumber("predicted_preemptions", row.Predicted.Preemptions);
            json.WriteStartArray("metrics");
            foreach (ValidationMetric m in row.Metrics)
            {
                json.WriteStartObject();
                json.WriteString("name", m.Name);
                json.WriteString("unit", m.Unit);
                WriteNumber(json, "real", m.Real);
                WriteNumber(json, "predicted", m.Predicted);
                WriteNumber(json, "relative_error", m.RelativeError);
                json.WriteBoolean("target", m.Target);
                json.WriteBoolean("within_tolerance", m.Within(Options.Tolerance));
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteEndObject();
    }

    private static void WriteNumber(Utf8JsonWriter json, string name, double value)
    {
        if (double.IsFinite(value))
            json.WriteNumber(name, value);
        else
            json.WriteNull(name);
    }
}

/// <summary>
/// The simulator against the real CPU engine on the same requests (issue 8, item 4). The workload is written as a
/// trace file and read back, so both sides replay exactly the file's requests; the simulator runs the borrowing
/// policy (the real <see cref="Cluster.ClusterPageSpace"/>) in shared-host lockstep
/// (<see cref="SimulationOptions.SharedHost"/>) with the real pools' page counts, the engine's token budget and no
/// gManager migration (the real run turns page moves off too: they stall the real loop but overlap in the model).
/// </summary>
public static class CpuValidation
{
    /// <summary>The seeded workload: log-uniform prompts (the middle request exactly the longest), uniform outputs,
    /// all at 0 or Poisson arrivals.</summary>
    public static IReadOnlyList<WorkloadRequest> Workload(CpuValidationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var random = new Random(options.Seed);
        var requests = new WorkloadRequest[options.Requests];
        double time = 0, logMin = Math.Log(options.MinPrompt), logMax = Math.Log(options.MaxPrompt);
        for (int i = 0; i < requests.Length; i++)
        {
            if (options.Rate > 0)
                time += -Math.Log(1 - random.NextDouble()) / options.Rate;
            int prompt = Math.Clamp((int)Math.Round(Math.Exp(logMin + random.NextDouble() * (logMax - logMin))), options.MinPrompt, options.MaxPrompt);
            int output = random.Next(options.MinOutput, options.MaxOutput + 1);
            if (i == requests.Length / 2)
                prompt = options.MaxPrompt; // one long prompt in every run: with 2 instances it outgrows its home and borrows
            requests[i] = new WorkloadRequest(time, prompt, output);
        }
        return requests;
    }

    /// <summary>KV pages of one instance when <see cref="CpuValidationOptions.KvMemoryBytes"/> is split over
    /// <paramref name="instances"/> pools of bf16 pages of the demo model (what a fake runner reports).</summary>
    public static int PagesPerInstance(CpuValidationOptions options, int instances)
    {
        ArgumentNullException.ThrowIfNull(options);
        double pageBytes = options.PageTokens * ModelShape.Demo12M.KvBytesPerToken(DeviceProfile.Cpu.KvBytesPerElement);
        return (int)Math.Max(1, Math.Floor(options.KvMemoryBytes / (double)instances / pageBytes));
    }

    /// <summary>The simulator's prediction for <paramref name="instances"/> in-process instances of
    /// <paramref name="pagesPerInstance"/> pages.</summary>
    public static SimulationResult Predict(IReadOnlyList<WorkloadRequest> trace, int instances, int pagesPerInstance,
        CpuValidationOptions options) => PredictSteps(trace, instances, pagesPerInstance, options).Result;

    /// <summary><see cref="Predict"/> with the per-step split.</summary>
    public static Prediction PredictSteps(IReadOnlyList<WorkloadRequest> trace, int instances, int pagesPerInstance,
        CpuValidationOptions options)
    {
        ArgumentNullException.ThrowIfNull(trace);
        ArgumentNullException.ThrowIfNull(options);
        ClusterLayout layout = SimulationRunner.Layout(ModelShape.Demo12M, DeviceProfile.Cpu, instances,
            Interconnect.SharedMemory, gpusPerInstance: 1, pageTokens: options.PageTokens) with { KvPagesPerInstance = pagesPerInstance };
        layout.Validate();
        long decodeSteps = 0;
        double decodeSeconds = 0, prefillTokens = 0, prefillSeconds = 0;
        var simulation = new SimulationOptions
        {
            MaxBatchTokens = options.MaxBatchTokens,
            MaxRunningPerInstance = options.MaxRunningRequests,
            MigrationTokensPerStep = 0,
            SharedHost = true,
            // The engine: one global queue, home-first growth, the strict lending cap, any instance lends.
            Dispatch = DispatchMode.Global,
            SpreadBorrowing = false,
            LendAllWhenIdle = false,
            BorrowOnlyFromCreditors = false,
            StepObserver = (prefill, decode, seconds) =>
            {
                if (prefill == 0)
                {
                    decodeSteps++;
                    decodeSeconds += seconds;
                }
                else
                {
                    prefillTokens += prefill;
                    prefillSeconds += seconds;
                }
            },
        };
        SimulationPolicy policy = SimulationPolicies.Create("borrowing", simulation, options.LendingCap);
        SimulationResult result = new ClusterSimulator(policy, layout, trace, simulation).Run();
        return new Prediction(result, decodeSteps, decodeSeconds, prefillSeconds > 0 ? prefillTokens / prefillSeconds : double.NaN);
    }

    /// <summary>Compares one real run with its prediction: throughput and mean step time (the issue's targets),
    /// makespan and mean time to first token.</summary>
    public static IReadOnlyList<ValidationMetric> Compare(RealRun real, Prediction prediction)
    {
        ArgumentNullException.ThrowIfNull(real);
        ArgumentNullException.ThrowIfNull(prediction);
        SimulationResult predicted = prediction.Result;
        double predictedStep = predicted.Steps > 0 ? predicted.BusySeconds / predicted.Steps : 0;
        double predictedTtft = predicted.Requests.Where(r => r.Served).Select(r => r.TimeToFirstToken).DefaultIfEmpty(double.NaN).Average();
        return
        [
            new ValidationMetric("throughput", "tok/s", real.Throughput, predicted.Throughput, Target: true),
            new ValidationMetric("mean step", "ms", real.MeanStepSeconds * 1e3, predictedStep * 1e3, Target: true),
            new ValidationMetric("makespan", "s", real.MakespanSeconds, predicted.MakespanSeconds, Target: false),
            new ValidationMetric("steps", "", real.Steps, predicted.Steps, Target: false),
            new ValidationMetric("mean TTFT", "s", real.MeanTtftSeconds, predictedTtft, Target: false),
            new ValidationMetric("decode step", "ms", real.MeanDecodeStepSeconds * 1e3, prediction.MeanDecodeStepSeconds * 1e3, Target: false),
            new ValidationMetric("prefill", "tok/s", real.PrefillTokensPerSecond, prediction.PrefillTokensPerSecond, Target: false),
        ];
    }

    /// <summary>Writes the workload to <paramref name="tracePath"/>, reads it back, and for each instance count runs
    /// it on <paramref name="runner"/> and through the simulator.</summary>
    public static async Task<CpuValidationReport> RunAsync(ICpuEngineRunner runner, CpuValidationOptions options, string tracePath,
        Action<string>? log = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(runner);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrEmpty(tracePath);
        options.Validate();
        TraceFile.Write(tracePath, Workload(options));
        IReadOnlyList<WorkloadRequest> trace = TraceFile.Read(tracePath);
        var rows = new List<ValidationRow>();
        foreach (int n in options.Instances)
        {
            cancellationToken.ThrowIfCancellationRequested();
            log?.Invoke(string.Create(CultureInfo.InvariantCulture, $"real engine: demo model, {n} in-process instance(s), {trace.Count} requests"));
            var runs = new List<RealRun>();
            for (int k = 0; k < options.Repeats; k++)
            {
                RealRun run = await runner.RunAsync(trace, n, options, cancellationToken).ConfigureAwait(false);
                runs.Add(run);
                log?.Invoke(string.Create(CultureInfo.InvariantCulture,
                    $"  run {k + 1}/{options.Repeats}: {run.MakespanSeconds:0.00} s, {run.Throughput:0.0} tok/s, {run.Steps} steps, mean step {run.MeanStepSeconds * 1e3:0.0} ms, {run.Preemptions} preemptions, {run.PagesPerInstance} pages per instance"));
            }
            RealRun real = Median(runs);
            Prediction predicted = PredictSteps(trace, n, real.PagesPerInstance, options);
            rows.Add(new ValidationRow(n, real, predicted.Result, Compare(real, predicted)) { Runs = runs });
        }
        return new CpuValidationReport(options, tracePath, trace, rows);
    }

    /// <summary>The run with the median makespan (the lower middle one of an even count).</summary>
    public static RealRun Median(IReadOnlyList<RealRun> runs)
    {
        ArgumentNullException.ThrowIfNull(runs);
        if (runs.Count == 0)
            throw new ArgumentException("No runs to take the median of.", nameof(runs));
        return runs.OrderBy(r => r.MakespanSeconds).ElementAt((runs.Count - 1) / 2);
    }

    /// <summary>A plain-text table of the figures; rows off by more than the tolerance are marked "MISS".</summary>
    public static string Table(CpuValidationReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var text = new StringBuilder();
        text.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"{"instances",9}  {"figure",-11} {"real",10} {"predicted",10} {"error",8}  verdict"));
        foreach (ValidationRow row in report.Rows)
        {
            foreach (ValidationMetric m in row.Metrics)
            {
                string name = m.Unit.Length == 0 ? m.Name : $"{m.Name} {m.Unit}";
                string limit = string.Create(CultureInfo.InvariantCulture, $"(>{report.Options.Tolerance * 100:0}%)");
                string verdict = m.Within(report.Options.Tolerance) ? "ok" : m.Target ? "MISS " + limit : "off " + limit;
                text.AppendLine(string.Create(CultureInfo.InvariantCulture,
                    $"{row.Instances,9}  {name,-11} {Format(m.Real),10} {Format(m.Predicted),10} {m.RelativeError,8:+0.0%;-0.0%}  {verdict}"));
            }
        }
        return text.ToString();
    }

    private static string Format(double value) =>
        double.IsFinite(value) ? (Math.Abs(value) >= 100 ? value.ToString("0", CultureInfo.InvariantCulture) : value.ToString("0.###", CultureInfo.InvariantCulture)) : "-";
}

/// <summary>
/// The real side of the validation: loads the demo model (<see cref="InfiniteEngine.LoadDemoAsync"/>) with
/// <c>Instances = N</c> and the validation's KV memory, page size and token budget, page moves off, runs one warm-up
/// request, then submits the trace's requests at their arrival times (token ids drawn from a seeded generator;
/// greedy, EOS ignored, exactly the trace's output tokens) and measures the makespan, the engine's steps and their
/// durations, and each request's time to first token.
/// </summary>
public sealed class DemoEngineRunner : ICpuEngineRunner
{
    public async Task<RealRun> RunAsync(IReadOnlyList<WorkloadRequest> trace, int instances, CpuValidationOptions options,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(trace);
        ArgumentNullException.ThrowIfNull(options);
        var engineOptions = new InfiniteOptions
        {
            Instances = instances,
            KvMemoryBytes = options.KvMemoryBytes,
            PageSize = options.PageTokens,
            MaxBatchTokens = options.MaxBatchTokens,
            MaxRunningRequests = options.MaxRunningRequests,
            MaxQueuedRequests = Math.Max(256, trace.Count + 1),
            Cluster = new ClusterOptions
            {
                Policy = ClusterPolicy.Borrowing,
                MovePages = false,
                RManager = new Cluster.RManagerOptions { LendingCap = options.LendingCap },
            },
        };
        await using InfiniteEngine engine = await InfiniteEngine.LoadDemoAsync(engineOptions, null, cancellationToken).ConfigureAwait(false);
        int vocab = engine.Config.VocabSize;
        var random = new Random(options.Seed);
        int[] Tokens(int count)
        {
            var ids = new int[count];
            for (int i = 0; i < count; i++)
                ids[i] = random.Next(vocab);
            return ids;
        }
        // Warm-up: JIT, BLAS threads, first-touch of the weights.
        await engine.CompleteAsync(Request(Tokens(Math.Min(256, options.MaxPrompt)), 4), cancellationToken).ConfigureAwait(false);

        int[][] prompts = [.. trace.Select(r => Tokens(r.PromptTokens))];
        long steps = 0, decodeSteps = 0, prefillTokens = 0;
        double stepSeconds = 0, decodeSeconds = 0, prefillSeconds = 0;
        object gate = new();
        void OnStep(object? sender, StepCompletedEventArgs e)
        {
            lock (gate)
            {
                steps++;
                stepSeconds += e.Duration.TotalSeconds;
                if (e.PrefillTokens == 0)
                {
                    decodeSteps++;
                    decodeSeconds += e.Duration.TotalSeconds;
                }
                else
                {
                    prefillTokens += e.PrefillTokens;
                    prefillSeconds += e.Duration.TotalSeconds;
                }
            }
        }
        long preemptionsBefore = engine.Engine.Stats.Preemptions;
        engine.Engine.StepCompleted += OnStep;
        var ttft = new double[trace.Count];
        var generated = new long[trace.Count];
        long start = Stopwatch.GetTimestamp();
        try
        {
            var tasks = new Task[trace.Count];
            for (int i = 0; i < trace.Count; i++)
            {
                double wait = trace[i].ArrivalSeconds - Stopwatch.GetElapsedTime(start).TotalSeconds;
                if (wait > 0)
                    await Task.Delay(TimeSpan.FromSeconds(wait), cancellationToken).ConfigureAwait(false);
                tasks[i] = Consume(engine, Request(prompts[i], trace[i].OutputTokens), i, start, ttft, generated, cancellationToken);
            }
            await Task.WhenAll(tasks).ConfigureAwait(false);
        }
        finally
        {
            engine.Engine.StepCompleted -= OnStep;
        }
        double makespan = Stopwatch.GetElapsedTime(start).TotalSeconds;
        int pages = engine.Executor.PageCount / engine.Executor.Instances;
        lock (gate)
        {
            double meanTtft = Enumerable.Range(0, trace.Count).Average(i => ttft[i] - trace[i].ArrivalSeconds);
            return new RealRun(instances, makespan, steps, stepSeconds, generated.Sum(), meanTtft, pages)
            {
                DecodeSteps = decodeSteps,
                DecodeStepSeconds = decodeSeconds,
                Preemptions = engine.Engine.Stats.Preemptions - preemptionsBefore,
                PrefillTokensPerSecond = prefillSeconds > 0 ? prefillTokens / prefillSeconds : double.NaN,
            };
        }
    }

    private static GenerationRequest Request(int[] prompt, int output) => new()
    {
        PromptTokens = prompt,
        MaxTokens = output,
        IgnoreEos = true,
        Sampling = SamplingOptions.Greedy,
    };

    private static async Task Consume(InfiniteEngine engine, GenerationRequest request, int index, long start, double[] ttft,
        long[] generated, CancellationToken cancellationToken)
    {
        // GenerateAsync submits at once (before the first await), so requests queue in trace order.
        IAsyncEnumerable<GeneratedToken> stream = engine.GenerateAsync(request, cancellationToken);
        long count = 0;
        await foreach (GeneratedToken _ in stream.ConfigureAwait(false))
        {
            if (count++ == 0)
                ttft[index] = Stopwatch.GetElapsedTime(start).TotalSeconds;
        }
        generated[index] = count;
    }
}
