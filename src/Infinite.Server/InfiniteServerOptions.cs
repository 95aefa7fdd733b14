using Microsoft.Extensions.Logging;

namespace Infinite.Server;

/// <summary>How <see cref="InfiniteServer"/> listens and what it accepts. Every property has a working default.</summary>
public sealed record InfiniteServerOptions
{
    /// <summary>Addresses to listen on, separated by ';'. Port 0 picks a free port (read it back from
    /// <c>WebApplication.Urls</c> after start).</summary>
    public string Urls { get; init; } = "http://127.0.0.1:8000";

    /// <summary>The id clients put in "model"; null = the model's file (or folder) name.</summary>
    public string? ModelId { get; init; }

    /// <summary>Largest request body accepted; larger ones get 413.</summary>
    public long MaxRequestBodyBytes { get; init; } = 4L << 20;

    /// <summary>On shutdown, how long in-flight requests may run on after new ones are refused; then they are cut.</summary>
    public TimeSpan ShutdownDrainTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Dispose the engine when <see cref="InfiniteServer.RunAsync"/> returns. Off: the caller owns it.</summary>
    public bool OwnsEngine { get; init; }

    /// <summary>Extra logging setup (providers, levels); null keeps the host's defaults.</summary>
    public Action<ILoggingBuilder>? ConfigureLogging { get; init; }
}
