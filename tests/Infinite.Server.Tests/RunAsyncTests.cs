using System.Net;
using System.Net.Sockets;
using Infinite.Engine;
using Infinite.Models;
using Infinite.Native;
using Microsoft.Extensions.Logging;

namespace Infinite.Server.Tests;

/// <summary><see cref="InfiniteServer.RunAsync"/>, as the CLI's serve command calls it: serves until cancelled, and
/// disposes the engine only when it owns it.</summary>
public sealed class RunAsyncTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("infinite-run-").FullName;
    private readonly string _model;

    public RunAsyncTests()
    {
        _model = Path.Combine(_dir, "run-model.gguf");
        SyntheticModel.WriteGguf(_model, TestServer.Tiny, seed: 3);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private async Task<InfiniteEngine> LoadAsync()
        => await InfiniteEngine.LoadAsync(_model, new InfiniteOptions { KvType = DataType.F32, PageSize = 16, KvMemoryBytes = 2 << 20 });

    private static async Task ServeUntilHealthyThenStopAsync(InfiniteEngine engine, bool ownsEngine, string? modelId)
    {
        string url = $"http://127.0.0.1:{FreePort()}";
        using var cts = new CancellationTokenSource();
        Task run = InfiniteServer.RunAsync(engine, new InfiniteServerOptions
        {
            Urls = url, OwnsEngine = ownsEngine, ModelId = modelId,
            ConfigureLogging = l => l.SetMinimumLevel(LogLevel.Warning),
        }, cts.Token);
        using var http = new HttpClient { BaseAddress = new Uri(url) };
        DateTime deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            Assert.False(run.IsCompleted, "RunAsync returned before it was cancelled");
            try
            {
                using HttpResponseMessage health = await http.GetAsync("/health");
                if (health.StatusCode == HttpStatusCode.OK)
                    break;
            }
            catch (HttpRequestException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(50);   // not listening yet
            }
        }
        // The id defaults to the model's file name.
        using (HttpResponseMessage model = await http.GetAsync("/v1/models/" + (modelId ?? "run-model.gguf")))
            Assert.Equal(HttpStatusCode.OK, model.StatusCode);
        await cts.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(30));
        await Assert.ThrowsAsync<HttpRequestException>(() => http.GetAsync("/health"));
    }

    [Fact]
    public async Task RunAsync_serves_until_cancelled_and_leaves_a_borrowed_engine_usable()
    {
        await using InfiniteEngine engine = await LoadAsync();
        await ServeUntilHealthyThenStopAsync(engine, ownsEngine: false, modelId: null);
        GenerationResult result = await engine.CompleteAsync(new GenerationRequest { Prompt = "still here", MaxTokens = 2 });
        Assert.InRange(result.Usage.CompletionTokens, 1, 2);
    }

    [Fact]
    public async Task RunAsync_disposes_an_engine_it_owns()
    {
        InfiniteEngine engine = await LoadAsync();
        await ServeUntilHealthyThenStopAsync(engine, ownsEngine: true, modelId: "my-model");
        Assert.Throws<ObjectDisposedException>(() => engine.GenerateAsync("gone", 2));
    }
}
