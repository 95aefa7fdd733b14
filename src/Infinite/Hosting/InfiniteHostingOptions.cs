using Infinite.Models;

namespace Infinite.Hosting;

/// <summary>What <see cref="InfiniteServiceCollectionExtensions.AddInfinite"/> loads when the host starts.</summary>
public sealed class InfiniteHostingOptions
{
    /// <summary>A .gguf file or a Hugging Face folder; null loads the built-in demo model (random weights, gibberish text).</summary>
    public string? ModelPath { get; set; }

    /// <summary>Device, KV cache and batching settings of the engine.</summary>
    public InfiniteOptions Options { get; set; } = new();

    /// <summary>
    /// false (default): the host's StartAsync waits for the model, so a bad model fails start-up and the app never
    /// serves without an engine. true: start-up returns at once and the model loads behind it; consumers wait in
    /// <see cref="InfiniteEngineProvider.GetEngineAsync"/> and readiness probes read <see cref="InfiniteEngineProvider.IsReady"/>.
    /// </summary>
    public bool LoadInBackground { get; set; }

    /// <summary>Receives the load stages (write, map, weights) with their byte counts; optional.</summary>
    public IProgress<LoadProgress>? Progress { get; set; }
}
