using Infinite.Engine;
using Infinite.Hosting;
using Infinite.Models;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Infinite.Packaging.Tests.Hosting;

/// <summary>services.AddInfinite() in a real generic host: load at start, generate through the provider, free at stop.</summary>
public sealed class AddInfiniteTests : IDisposable
{
    private static readonly LlamaConfig Tiny = SyntheticModel.DemoConfig with
    {
        Dim = 64, Layers = 2, QHeads = 4, KvHeads = 2, HeadDim = 16, FfnDim = 96, VocabSize = 300, ContextLength = 2048,
    };

    private static readonly InfiniteOptions Small = new() { KvMemoryBytes = 32L << 20, MaxRunningRequests = 4 };

    private readonly string _dir = Directory.CreateTempSubdirectory("infinite-hosting-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static IHost BuildHost(Action<InfiniteHostingOptions> configure)
    {
        HostApplicationBuilder builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddInfinite(configure);
        return builder.Build();
    }

    private static async Task<string> GenerateAsync(InfiniteEngine engine, int tokens)
    {
        var request = new GenerationRequest
        {
            Prompt = "Once upon a time",
            MaxTokens = tokens,
            IgnoreEos = true,
            Sampling = new SamplingOptions { Temperature = 0 },
        };
        GenerationResult result = await engine.CompleteAsync(request);
        Assert.Equal(tokens, result.Usage.CompletionTokens);
        return result.Text;
    }

    [Fact]
    public async Task A_model_file_loads_at_start_serves_through_the_provider_and_is_freed_at_stop()
    {
        string model = Path.Combine(_dir, "tiny.gguf");
        SyntheticModel.WriteGguf(model, Tiny, seed: 3);
        var stages = new List<string>();
        using IHost host = BuildHost(o =>
        {
            o.ModelPath = model;
            o.Options = Small;
            o.Progress = new InlineProgress(p => { lock (stages) stages.Add(p.Stage); });
        });
        var provider = host.Services.GetRequiredService<InfiniteEngineProvider>();
        Assert.False(provider.IsReady);

        await host.StartAsync();
        Assert.True(provider.IsReady);
        Assert.Contains("weights", stages);
        InfiniteEngine engine = await provider.GetEngineAsync();
        Assert.Equal(model, engine.ModelPath);
        string first = await GenerateAsync(engine, 5);
        Assert.Equal(first, await GenerateAsync(await provider.GetEngineAsync(), 5)); // greedy: same text twice

        await host.StopAsync();
        Assert.False(provider.IsReady);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => provider.GetEngineAsync());
    }

    [Fact]
    public async Task No_model_path_loads_the_demo_model()
    {
        using IHost host = BuildHost(o => o.Options = Small);
        await host.StartAsync();
        InfiniteEngine engine = await host.Services.GetRequiredService<InfiniteEngineProvider>().GetEngineAsync();
        Assert.Equal(Path.Combine(DemoModel.CacheDirectory, Path.GetFileName(engine.ModelPath)), engine.ModelPath);
        Assert.Equal(SyntheticModel.DemoConfig.Layers, engine.Config.Layers);
        await GenerateAsync(engine, 3);
        await host.StopAsync();
    }

    [Fact]
    public async Task A_missing_model_fails_start_with_the_file_named()
    {
        string missing = Path.Combine(_dir, "no-such-model.gguf");
        using IHost host = BuildHost(o => { o.ModelPath = missing; o.Options = Small; });
        var failure = await Assert.ThrowsAsync<InvalidOperationException>(() => host.StartAsync());
        Assert.Contains(missing, failure.Message, StringComparison.Ordinal);
        var provider = host.Services.GetRequiredService<InfiniteEngineProvider>();
        Assert.False(provider.IsReady);
        Assert.IsType<FileNotFoundException>(provider.LoadFailure);
        await Assert.ThrowsAsync<FileNotFoundException>(() => provider.GetEngineAsync());
    }

    [Fact]
    public async Task A_corrupt_model_fails_start_with_the_format_error()
    {
        string corrupt = Path.Combine(_dir, "corrupt.gguf");
        await File.WriteAllBytesAsync(corrupt, [0x47, 0x47, 0x55, 0x46, 3, 0, 0, 0, 1]); // "GGUF" v3, then cut off
        using IHost host = BuildHost(o => { o.ModelPath = corrupt; o.Options = Small; });
        var failure = await Assert.ThrowsAsync<InvalidOperationException>(() => host.StartAsync());
        Assert.Contains("corrupt.gguf", failure.Message, StringComparison.Ordinal);
        Assert.IsType<ModelFormatException>(failure.InnerException);
    }

    [Fact]
    public async Task A_background_load_lets_start_return_and_consumers_wait_for_the_engine()
    {
        string model = Path.Combine(_dir, "tiny.gguf");
        SyntheticModel.WriteGguf(model, Tiny, seed: 4);
        using IHost host = BuildHost(o => { o.ModelPath = model; o.Options = Small; o.LoadInBackground = true; });
        await host.StartAsync();
        var provider = host.Services.GetRequiredService<InfiniteEngineProvider>();
        using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        InfiniteEngine engine = await provider.GetEngineAsync(limit.Token);
        Assert.True(provider.IsReady);
        await GenerateAsync(engine, 4);
        await host.StopAsync();
        Assert.False(provider.IsReady);
    }

    [Fact]
    public async Task A_failed_background_load_reaches_consumers_and_not_start()
    {
        string missing = Path.Combine(_dir, "later-missing.gguf");
        using IHost host = BuildHost(o => { o.ModelPath = missing; o.LoadInBackground = true; });
        await host.StartAsync();
        var provider = host.Services.GetRequiredService<InfiniteEngineProvider>();
        var failure = await Assert.ThrowsAsync<FileNotFoundException>(() => provider.GetEngineAsync());
        Assert.Contains(missing, failure.Message, StringComparison.Ordinal);
        Assert.False(provider.IsReady);
        await host.StopAsync();
    }

    [Fact]
    public async Task Stopping_during_a_background_load_frees_the_engine_and_answers_waiting_consumers()
    {
        string model = Path.Combine(_dir, "tiny.gguf");
        SyntheticModel.WriteGguf(model, Tiny, seed: 5);
        using IHost host = BuildHost(o => { o.ModelPath = model; o.Options = Small; o.LoadInBackground = true; });
        var provider = host.Services.GetRequiredService<InfiniteEngineProvider>();
        await host.StartAsync();
        Task<InfiniteEngine> waiting = provider.GetEngineAsync();
        await host.StopAsync();

        Assert.False(provider.IsReady);
        // Whether the stop came before or after the load finished, nobody is left waiting or handed a freed engine.
        Exception failure = await Assert.ThrowsAnyAsync<Exception>(() => provider.GetEngineAsync().WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.True(failure is ObjectDisposedException or OperationCanceledException, failure.ToString());
        if (await Task.WhenAny(waiting, Task.Delay(TimeSpan.FromSeconds(30))) != waiting)
        {
            Assert.Fail("a consumer that asked before the stop is still waiting");
        }
    }

    [Fact]
    public void AddInfinite_twice_is_refused()
    {
        var services = new ServiceCollection();
        services.AddInfinite(_ => { });
        var failure = Assert.Throws<InvalidOperationException>(() => services.AddInfinite(_ => { }));
        Assert.Contains("AddInfinite", failure.Message, StringComparison.Ordinal);
    }

    /// <summary>Progress&lt;T&gt; posts to the thread pool; the test wants the stages recorded before StartAsync returns.</summary>
    private sealed class InlineProgress(Action<LoadProgress> report) : IProgress<LoadProgress>
    {
        public void Report(LoadProgress value) => report(value);
    }
}
