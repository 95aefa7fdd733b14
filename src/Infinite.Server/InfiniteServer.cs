using Infinite.Server.Api;
using Infinite.Server.Metrics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Infinite.Server;

/// <summary>
/// The OpenAI-compatible HTTP server (Kestrel) over a loaded <see cref="InfiniteEngine"/>:
/// POST /v1/completions, /v1/chat/completions; GET /v1/models, /health, /ready, /metrics.
/// <code>
/// await using var engine = await InfiniteEngine.LoadAsync("model.gguf");
/// await InfiniteServer.RunAsync(engine, new InfiniteServerOptions { Urls = "http://0.0.0.0:8000" });
/// </code>
/// The server never disposes the engine unless <see cref="InfiniteServerOptions.OwnsEngine"/> is set.
/// </summary>
public static class InfiniteServer
{
    /// <summary>Builds the app without starting it; start with <c>StartAsync</c>/<c>RunAsync</c>, and read the
    /// bound addresses (port 0) from <c>app.Urls</c> after start.</summary>
    public static WebApplication Build(InfiniteEngine engine, InfiniteServerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(engine);
        options ??= new InfiniteServerOptions();
        if (options.MaxRequestBodyBytes <= 0)
            throw new ArgumentException($"MaxRequestBodyBytes must be > 0, got {options.MaxRequestBodyBytes}.", nameof(options));
        if (options.ShutdownDrainTimeout < TimeSpan.Zero)
            throw new ArgumentException($"ShutdownDrainTimeout must be >= 0, got {options.ShutdownDrainTimeout}.", nameof(options));
        ArgumentException.ThrowIfNullOrWhiteSpace(options.Urls, nameof(options));

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            Args = [],
            ApplicationName = typeof(InfiniteServer).Assembly.GetName().Name,
        });
        builder.WebHost.UseUrls(options.Urls);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Limits.MaxRequestBodySize = options.MaxRequestBodyBytes;
            kestrel.AddServerHeader = false;
        });
        // In-flight requests get this long after shutdown begins; then Kestrel aborts them, which cancels them.
        builder.Services.Configure<HostOptions>(host => host.ShutdownTimeout = options.ShutdownDrainTimeout);
        options.ConfigureLogging?.Invoke(builder.Logging);

        var state = new ServerState(options.ModelId ?? DefaultModelId(engine.ModelPath));
        builder.Services.AddSingleton(state);
        builder.Services.AddSingleton(_ => new ServerMetrics(engine.Engine));

        WebApplication app = builder.Build();
        app.Lifetime.ApplicationStopping.Register(state.BeginDrain);
        var metrics = app.Services.GetRequiredService<ServerMetrics>();
        ILogger logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Infinite.Server");

        var pipeline = new RequestPipeline(metrics, logger);
        app.Use(pipeline.InvokeAsync);
        var generation = new GenerationEndpoints(engine, state, metrics, logger, options.MaxRequestBodyBytes);
        var info = new InfoEndpoints(state, metrics);
        app.MapPost("/v1/completions", generation.CompletionsAsync);
        app.MapPost("/v1/chat/completions", generation.ChatCompletionsAsync);
        app.MapGet("/v1/models", info.ModelsAsync);
        app.MapGet("/v1/models/{id}", info.ModelAsync);
        app.MapGet("/health", info.HealthAsync);
        app.MapGet("/ready", info.ReadyAsync);
        app.MapGet("/metrics", info.MetricsAsync);
        return app;
    }

    /// <summary>Serves until <paramref name="cancellationToken"/> fires or the process is asked to stop (Ctrl+C,
    /// SIGTERM), then drains in-flight requests for up to <see cref="InfiniteServerOptions.ShutdownDrainTimeout"/>.</summary>
    public static async Task RunAsync(InfiniteEngine engine, InfiniteServerOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(engine);
        options ??= new InfiniteServerOptions();
        WebApplication app = Build(engine, options);
        try
        {
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
            await app.WaitForShutdownAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            await app.DisposeAsync().ConfigureAwait(false);
            if (options.OwnsEngine)
                await engine.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>"model.gguf" for /models/model.gguf, the folder's name for a Hugging Face folder.</summary>
    internal static string DefaultModelId(string modelPath)
    {
        string name = Path.GetFileName(Path.TrimEndingDirectorySeparator(modelPath));
        return string.IsNullOrEmpty(name) ? "model" : name;
    }
}
