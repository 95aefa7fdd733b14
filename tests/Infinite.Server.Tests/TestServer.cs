using Infinite.Engine;
using Infinite.Models;
using Infinite.Native;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Infinite.Server.Tests;

/// <summary>A real Kestrel on 127.0.0.1 (a free port) over a tiny synthetic model written to a temp folder.</summary>
public sealed class TestServer : IAsyncDisposable
{
    /// <summary>Small enough to load in well under a second; context 2048 for the prompt-length tests.</summary>
    public static readonly LlamaConfig Tiny = SyntheticModel.DemoConfig with
    {
        Dim = 64, Layers = 2, QHeads = 4, KvHeads = 2, HeadDim = 16, FfnDim = 96, VocabSize = 320, ContextLength = 2048,
    };

    public const string ModelFile = "tiny.gguf";

    private readonly string _dir;
    private bool _engineDisposed;

    private TestServer(string dir, InfiniteEngine engine, WebApplication app, string baseUrl)
    {
        _dir = dir;
        Engine = engine;
        App = app;
        BaseUrl = baseUrl;
        Http = new HttpClient { BaseAddress = new Uri(baseUrl), Timeout = TimeSpan.FromMinutes(2) };
    }

    public InfiniteEngine Engine { get; }
    public WebApplication App { get; }
    public string BaseUrl { get; }
    public HttpClient Http { get; }
    public string ModelId => ModelFile;

    internal ServerState State => App.Services.GetRequiredService<ServerState>();

    public static async Task<TestServer> StartAsync(InfiniteOptions? engineOptions = null,
        InfiniteServerOptions? serverOptions = null)
    {
        string dir = Directory.CreateTempSubdirectory("infinite-server-").FullName;
        string model = Path.Combine(dir, ModelFile);
        SyntheticModel.WriteGguf(model, Tiny, seed: 7);
        InfiniteEngine engine = await InfiniteEngine.LoadAsync(model, engineOptions ?? new InfiniteOptions
        {
            KvType = DataType.F32, PageSize = 16, KvMemoryBytes = 4 << 20,
        });
        WebApplication app = InfiniteServer.Build(engine, (serverOptions ?? new InfiniteServerOptions()) with
        {
            Urls = "http://127.0.0.1:0",
            ConfigureLogging = logging => logging.SetMinimumLevel(LogLevel.Warning),
        });
        await app.StartAsync();
        return new TestServer(dir, engine, app, app.Urls.Single());
    }

    /// <summary>Disposes the engine now (the server keeps running), for the "engine gone" tests.</summary>
    public async Task DisposeEngineAsync()
    {
        _engineDisposed = true;
        await Engine.DisposeAsync();
    }

    /// <summary>Polls the engine until no request runs or waits and every KV page is free, or fails after
    /// <paramref name="timeout"/>.</summary>
    public async Task<EngineStats> WaitAllPagesFreeAsync(TimeSpan? timeout = null)
    {
        DateTime deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(10));
        EngineStats stats = Engine.Engine.Stats;
        while (stats.PagesFree != stats.PagesTotal || stats.RunningRequests != 0 || stats.QueuedRequests != 0)
        {
            Assert.True(DateTime.UtcNow < deadline,
                $"KV pages still held after the wait: {stats.PagesUsed} used of {stats.PagesTotal}, {stats.RunningRequests} running, {stats.QueuedRequests} queued.");
            await Task.Delay(20);
            stats = Engine.Engine.Stats;
        }
        return stats;
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
        if (!_engineDisposed)
            await Engine.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }
}

/// <summary>One server shared by the tests of a class.</summary>
public sealed class ServerFixture : IAsyncLifetime
{
    public TestServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await TestServer.StartAsync();

    public async Task DisposeAsync() => await Server.DisposeAsync();
}
