using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Infinite.Hosting;

/// <summary>
/// Loads the engine when the host starts (waiting for it, or behind start-up with
/// <see cref="InfiniteHostingOptions.LoadInBackground"/>), publishes it through <see cref="InfiniteEngineProvider"/>,
/// and on stop cancels in-flight generations and frees the KV cache, weights and file.
/// </summary>
public sealed partial class InfiniteEngineHostedService(
    InfiniteEngineProvider provider, IOptions<InfiniteHostingOptions> options, ILogger<InfiniteEngineHostedService> logger)
    : IHostedService, IDisposable
{
    private readonly CancellationTokenSource _stopping = new();
    private Task _load = Task.CompletedTask;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        InfiniteHostingOptions settings = options.Value;
        if (settings.LoadInBackground)
        {
            // Background loads must outlive the start token (it ends when start-up completes); stop cancels them.
            _load = LoadAsync(settings, _stopping.Token);
            return;
        }
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stopping.Token);
        _load = LoadAsync(settings, linked.Token);
        await _load.ConfigureAwait(false);
        if (provider.LoadFailure is { } failure)
        {
            throw failure is OperationCanceledException ? failure
                : new InvalidOperationException($"Infinite could not load {Describe(settings)}: {failure.Message}", failure);
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        // A load cannot be interrupted mid-upload; wait for it so its engine is disposed, not leaked.
        await _load.WaitAsync(cancellationToken).ConfigureAwait(false);
        await provider.DisposeAsync().ConfigureAwait(false);
        LogStopped(logger);
    }

    public void Dispose() => _stopping.Dispose();

    private async Task LoadAsync(InfiniteHostingOptions settings, CancellationToken cancellationToken)
    {
        LogLoading(logger, Describe(settings), settings.Options.Device);
        InfiniteEngine engine;
        try
        {
            engine = settings.ModelPath is null
                ? await InfiniteEngine.LoadDemoAsync(settings.Options, settings.Progress, cancellationToken).ConfigureAwait(false)
                : await InfiniteEngine.LoadAsync(settings.ModelPath, settings.Options, settings.Progress, cancellationToken)
                    .ConfigureAwait(false);
        }
        catch (Exception e)
        {
            LogFailed(logger, e, Describe(settings), e.Message);
            provider.SetFailed(e);
            return;
        }
        if (!provider.TrySetLoaded(engine))
        {
            await engine.DisposeAsync().ConfigureAwait(false);
            return;
        }
        LogReady(logger, engine.ModelPath, engine.Config.ParameterCount / 1e6, engine.Executor.PageCount,
            engine.Executor.PageSize, engine.MaxContext);
        if (settings.ModelPath is null)
        {
            LogDemo(logger);
        }
    }

    private static string Describe(InfiniteHostingOptions settings) => settings.ModelPath ?? "the built-in demo model";

    [LoggerMessage(Level = LogLevel.Information, Message = "Loading {Model} on {Device}")]
    private static partial void LogLoading(ILogger logger, string model, string device);

    [LoggerMessage(Level = LogLevel.Information,
        Message = "Infinite ready: {Model} ({Parameters:0.#}M parameters), KV cache {Pages} pages x {PageSize} tokens, max context {MaxContext}")]
    private static partial void LogReady(ILogger logger, string model, double parameters, int pages, int pageSize, int maxContext);

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "The built-in demo model has RANDOM weights: its text is gibberish. Set ModelPath to a .gguf file or a Hugging Face folder for real output.")]
    private static partial void LogDemo(ILogger logger);

    [LoggerMessage(Level = LogLevel.Error, Message = "Infinite could not load {Model}: {Reason}")]
    private static partial void LogFailed(ILogger logger, Exception exception, string model, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Infinite engine stopped and freed")]
    private static partial void LogStopped(ILogger logger);
}
