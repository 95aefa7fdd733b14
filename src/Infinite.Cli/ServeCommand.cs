using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using Infinite.Models;
using Infinite.Server;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Spectre.Console;

namespace Infinite.Cli;

/// <summary>
/// <c>infinite serve</c>: loads a model (a progress bar per load stage), starts the OpenAI-compatible server,
/// prints where it listens, and on Ctrl+C (or SIGTERM) stops taking requests, drains the running ones and exits 0.
/// </summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var flags = new ModelOptions();
        var host = new Option<string>("--host") { Description = "Address to listen on (0.0.0.0: every interface).", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "TCP port (0: any free port).", DefaultValueFactory = _ => 8000 };
        var modelId = new Option<string?>("--model-id") { Description = "The name clients put in \"model\" (default: the model's file or folder name)." };
        var maxBatchTokens = new Option<int>("--max-batch-tokens") { Description = "Tokens fed to the model per step (decodes plus prefill chunks).", DefaultValueFactory = _ => 2048 };
        var maxRunning = new Option<int>("--max-running") { Description = "Requests in the running batch at once.", DefaultValueFactory = _ => 64 };
        var maxQueued = new Option<int>("--max-queued") { Description = "Requests waiting for admission before new ones get 429.", DefaultValueFactory = _ => 256 };

        var command = new Command("serve", "Load a model and serve it over an OpenAI-compatible HTTP API until Ctrl+C.");
        flags.AddTo(command);
        foreach (Option option in new Option[] { host, port, modelId, maxBatchTokens, maxRunning, maxQueued })
        {
            command.Options.Add(option);
        }
        // A synchronous action: System.CommandLine then installs no Ctrl+C handler of its own, whose 2-second limit
        // would cut the drain short with exit code 130; the signals are handled below and by the web host.
        command.SetAction(result =>
        {
            var settings = new ServeSettings(result.GetValue(host)!, result.GetValue(port), result.GetValue(modelId),
                result.GetValue(maxBatchTokens), result.GetValue(maxRunning), result.GetValue(maxQueued));
            return RunAsync(result, flags, settings, result.InvocationConfiguration.Output, result.InvocationConfiguration.Error)
                .GetAwaiter().GetResult();
        });
        return command;
    }

    private sealed record ServeSettings(string Host, int Port, string? ModelId, int MaxBatchTokens, int MaxRunning, int MaxQueued);

    private static async Task<int> RunAsync(ParseResult result, ModelOptions flags, ServeSettings settings,
        TextWriter output, TextWriter error)
    {
        IAnsiConsole console = CreateConsole(output);
        InfiniteEngine? engine = null;
        try
        {
            if (flags.IsMpiWorker(result))
            {
                return await flags.RunMpiWorkerAsync(result, error, CancellationToken.None).ConfigureAwait(false);
            }
            string url = ListenUrl(settings.Host, settings.Port);
            string? model = result.GetValue(flags.Model);
            InfiniteOptions options = ReadOptions(result, flags, settings, model);
            if (model is null)
            {
                console.MarkupLine("[yellow]No --model given: loading the built-in demo model (RANDOM weights).[/]");
            }
            using (var interrupt = new InterruptScope())
            {
                engine = await LoadWithProgressAsync(console, model, options, interrupt.Token).ConfigureAwait(false);
                // A load runs to its end once started; a Ctrl+C during it still means "do not serve".
                interrupt.Token.ThrowIfCancellationRequested();
            }

            WebApplication app = InfiniteServer.Build(engine, new InfiniteServerOptions
            {
                Urls = url,
                ModelId = settings.ModelId,
                // The banner says where it listens; ASP.NET's own start-up lines would repeat it. A start or stop
                // failure propagates here and becomes one error line, so the host's copy (a stack trace) is muted.
                ConfigureLogging = logging => logging
                    .AddFilter("Microsoft", LogLevel.Warning)
                    .AddFilter("Microsoft.Extensions.Hosting.Internal.Host", LogLevel.None),
            });
            await using (app.ConfigureAwait(false))
            {
                // From here the web host's console lifetime owns Ctrl+C and SIGTERM: it stops the host, which stops
                // taking requests and drains the running ones within the server's drain timeout.
                await app.StartAsync().ConfigureAwait(false);
                WriteBanner(console, app, engine, options, settings, model is null);
                await app.WaitForShutdownAsync().ConfigureAwait(false);
            }
            console.MarkupLine("[grey]stopped: in-flight requests drained[/]");
            return 0;
        }
        catch (OperationCanceledException)
        {
            await error.WriteLineAsync("cancelled before the server started").ConfigureAwait(false);
            return 130;
        }
#pragma warning disable CA1031 // A CLI reports every failure as one line and exit code 1, never a stack trace.
        catch (Exception e)
#pragma warning restore CA1031
        {
            await error.WriteLineAsync($"error: {Describe(e)}").ConfigureAwait(false);
            return 1;
        }
        finally
        {
            if (engine is not null)
            {
                await engine.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>The engine options of the flags, checked here so a bad value is named before anything loads.</summary>
    private static InfiniteOptions ReadOptions(ParseResult result, ModelOptions flags, ServeSettings settings, string? model)
    {
        RequirePositive("--max-batch-tokens", settings.MaxBatchTokens);
        RequirePositive("--max-running", settings.MaxRunning);
        RequirePositive("--max-queued", settings.MaxQueued);
        InfiniteOptions options = flags.Read(result, settings.MaxBatchTokens) with
        {
            MaxRunningRequests = settings.MaxRunning,
            MaxQueuedRequests = settings.MaxQueued,
        };
        if (result.GetValue(flags.Sparse))
        {
            // Head roles depend on the model's shape: read its config (the demo model is written first if missing).
            using ModelFile file = ModelFile.Open(model ?? DemoModel.EnsureWritten());
            options = options with { Sparse = flags.ReadSparse(result, file.Config) };
        }
        return options;
    }

    private static void RequirePositive(string flag, int value)
    {
        if (value <= 0)
        {
            throw new ArgumentException($"{flag} must be at least 1 (got {value})");
        }
    }

    /// <summary>"http://127.0.0.1:8000"; an IPv6 literal gets its brackets.</summary>
    internal static string ListenUrl(string host, int port)
    {
        if (port is < 0 or > 65535)
        {
            throw new ArgumentException($"--port {port} is out of range: use 0 to 65535 (0 = any free port)");
        }
        string h = host.Trim();
        if (h.Length == 0 || h.Any(char.IsWhiteSpace) || h.Contains('/', StringComparison.Ordinal))
        {
            throw new ArgumentException($"--host '{host}' is not a host name or IP address");
        }
        if (h.Contains(':', StringComparison.Ordinal) && !h.StartsWith('['))
        {
            h = $"[{h}]";
        }
        return string.Create(CultureInfo.InvariantCulture, $"http://{h}:{port}");
    }

    private static async Task<InfiniteEngine> LoadWithProgressAsync(IAnsiConsole console, string? model,
        InfiniteOptions options, CancellationToken cancellationToken)
    {
        if (!console.Profile.Capabilities.Interactive)
        {
            // Redirected to a file or a log collector: one line per finished stage instead of redrawn bars.
            var lines = new StageLines(console, options.Device);
            return model is null
                ? await InfiniteEngine.LoadDemoAsync(options, lines, cancellationToken).ConfigureAwait(false)
                : await InfiniteEngine.LoadAsync(model, options, lines, cancellationToken).ConfigureAwait(false);
        }
        InfiniteEngine? engine = null;
        await console.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .StartAsync(async context =>
            {
                var stages = new StageBars(context, options.Device);
                engine = model is null
                    ? await InfiniteEngine.LoadDemoAsync(options, stages, cancellationToken).ConfigureAwait(false)
                    : await InfiniteEngine.LoadAsync(model, options, stages, cancellationToken).ConfigureAwait(false);
                stages.CompleteAll();
            }).ConfigureAwait(false);
        return engine!;
    }

    private static string StageLabel(string stage, string device) => stage switch
    {
        "write" => "writing the demo model",
        "map" => "mapping the model file",
        "weights" => $"uploading weights ({device})",
        _ => stage,
    };

    /// <summary>"mapping the model file: done" once per stage.</summary>
    private sealed class StageLines(IAnsiConsole console, string device) : IProgress<LoadProgress>
    {
        private readonly HashSet<string> _done = new(StringComparer.Ordinal);

        public void Report(LoadProgress value)
        {
            if (value.Done >= value.Total)
            {
                lock (_done)
                {
                    if (_done.Add(value.Stage))
                    {
                        console.WriteLine($"{StageLabel(value.Stage, device)}: done");
                    }
                }
            }
        }
    }

    /// <summary>One bar per <see cref="LoadProgress.Stage"/>, created when the stage first reports.</summary>
    private sealed class StageBars(ProgressContext context, string device) : IProgress<LoadProgress>
    {
        private readonly Dictionary<string, ProgressTask> _bars = new(StringComparer.Ordinal);
        private readonly Lock _lock = new();

        public void Report(LoadProgress value)
        {
            lock (_lock)
            {
                if (!_bars.TryGetValue(value.Stage, out ProgressTask? bar))
                {
                    bar = context.AddTask(Markup.Escape(StageLabel(value.Stage, device)), maxValue: Math.Max(1, value.Total));
                    _bars.Add(value.Stage, bar);
                }
                bar.MaxValue = Math.Max(1, value.Total);
                bar.Value = value.Total > 0 ? value.Done : 1;
            }
        }

        public void CompleteAll()
        {
            lock (_lock)
            {
                foreach (ProgressTask bar in _bars.Values)
                {
                    bar.Value = bar.MaxValue;
                }
            }
        }
    }

    private static void WriteBanner(IAnsiConsole console, WebApplication app, InfiniteEngine engine, InfiniteOptions options,
        ServeSettings settings, bool demo)
    {
        // With --port 0 the bound port is known only now.
        string url = app.Urls.FirstOrDefault() ?? ListenUrl(settings.Host, settings.Port);
        LlamaConfig config = engine.Config;
        long kvTokens = (long)engine.Executor.PageCount * engine.Executor.PageSize;
        var grid = new Grid().AddColumn(new GridColumn().NoWrap()).AddColumn();
        grid.AddRow("[bold]listening[/]", $"[bold green]{Markup.Escape(url)}[/]");
        grid.AddRow("model", Markup.Escape($"{engine.ModelPath} ({config.ParameterCount / 1e6:0.#}M parameters, {config.Layers} layers, " +
            $"{config.QHeads}/{config.KvHeads} heads)"));
        grid.AddRow("device", Markup.Escape(options.Device));
        grid.AddRow("KV cache", Markup.Escape($"{FormatBytes(options.KvMemoryBytes)} {options.KvType.ToString().ToLowerInvariant()}: {engine.Executor.PageCount} pages x " +
            $"{engine.Executor.PageSize} tokens = {kvTokens} tokens{(options.Sparse is null ? "" : ", sparse attention")}" +
            (engine.Executor.RingPagesPerSequence > 0 ? $", streaming heads in rings of {engine.Executor.RingPagesPerSequence} pages per request" : "")));
        if (engine.Executor.Instances > 1)
        {
            string kind = options.Mpi ? "MPI ranks (one instance each)" : "in-process instances";
            grid.AddRow("instances", Markup.Escape($"{engine.Executor.Instances} {kind} of {engine.Executor.PagesPerInstance} pages, " +
                $"{options.Cluster.Policy.ToString().ToLowerInvariant()} policy"));
        }
        grid.AddRow("limits", Markup.Escape($"context {engine.MaxContext} tokens, {options.MaxBatchTokens} tokens per step, " +
            $"{options.MaxRunningRequests} running, {options.MaxQueuedRequests} queued"));
        grid.AddRow("API", "POST /v1/chat/completions, /v1/completions; GET /v1/models, /health, /ready, /metrics");
        console.Write(new Panel(grid).Header("Infinite").Border(BoxBorder.Rounded));
        if (demo)
        {
            console.MarkupLine("[yellow]The built-in demo model has RANDOM weights: its text is gibberish. " +
                               "Serve a real model with --model model.gguf (or a Hugging Face folder).[/]");
        }
        console.MarkupLine("Press [bold]Ctrl+C[/] to stop (running requests finish first).");
    }

    private static string FormatBytes(long bytes) => bytes switch
    {
        >= 1L << 30 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 30):0.##} GiB"),
        >= 1L << 20 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 20):0.##} MiB"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{bytes} B"),
    };

    /// <summary>The message, plus the inner one when it says something the outer does not (bind failures).</summary>
    private static string Describe(Exception e)
    {
        string message = e is ArgumentException or IOException or InvalidDataException or UnauthorizedAccessException
            or Native.InfiniteException or NotSupportedException or ModelFormatException
            ? e.Message
            : $"{e.GetType().Name}: {e.Message}";
        if (e.InnerException is { } inner && !message.Contains(inner.Message, StringComparison.OrdinalIgnoreCase))
        {
            message += $" ({inner.Message})";
        }
        return message;
    }

    /// <summary>Spectre on the command's writer: live bars on a terminal, plain lines when redirected or captured.</summary>
    private static IAnsiConsole CreateConsole(TextWriter output)
    {
        bool terminal = ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected;
        return AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output),
            Ansi = terminal ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = terminal ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = terminal ? InteractionSupport.Detect : InteractionSupport.No,
        });
    }

    /// <summary>Ctrl+C and SIGTERM cancel the model load (before the web host takes the signals over).</summary>
    private sealed class InterruptScope : IDisposable
    {
        private readonly CancellationTokenSource _cancel = new();
        private readonly PosixSignalRegistration _interrupt;
        private readonly PosixSignalRegistration _terminate;

        public InterruptScope()
        {
            _interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
            _terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        }

        public CancellationToken Token => _cancel.Token;

        private void OnSignal(PosixSignalContext context)
        {
            context.Cancel = true;
            _cancel.Cancel();
        }

        public void Dispose()
        {
            _interrupt.Dispose();
            _terminate.Dispose();
            _cancel.Dispose();
        }
    }
}
