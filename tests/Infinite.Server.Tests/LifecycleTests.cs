using System.Net;
using System.Text.Json;
using Infinite.Native;

namespace Infinite.Server.Tests;

/// <summary>Health, readiness, overload, a disposed engine and graceful shutdown; each test has its own server.</summary>
public sealed class LifecycleTests
{
    private static string Completion(TestServer s, int maxTokens, bool stream = false)
        => $$"""{"model": "{{s.ModelId}}", "prompt": "The mill", "max_tokens": {{maxTokens}}, "ignore_eos": true, "stream": {{(stream ? "true" : "false")}}}""";

    [Fact]
    public async Task Health_and_ready_answer_200_then_ready_turns_503_when_draining()
    {
        await using TestServer server = await TestServer.StartAsync();
        using (HttpResponseMessage health = await server.Http.GetAsync("/health"))
        {
            Assert.Equal(HttpStatusCode.OK, health.StatusCode);
            Assert.Equal("ok", (await HttpHelpers.ReadJsonAsync(health)).GetProperty("status").GetString());
        }
        using (HttpResponseMessage ready = await server.Http.GetAsync("/ready"))
            Assert.Equal(HttpStatusCode.OK, ready.StatusCode);

        server.State.BeginDrain();
        using (HttpResponseMessage ready = await server.Http.GetAsync("/ready"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
            HttpHelpers.AssertError(await HttpHelpers.ReadJsonAsync(ready), "service_unavailable_error", code: "server_not_ready");
        }
        var (status, body) = await server.Http.PostAsync("/v1/completions", Completion(server, 2));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
        Assert.Contains("shutting down", HttpHelpers.AssertError(body, "service_unavailable_error").GetProperty("message").GetString());
        using (HttpResponseMessage health = await server.Http.GetAsync("/health"))
            Assert.Equal(HttpStatusCode.OK, health.StatusCode);
    }

    [Fact]
    public async Task A_disposed_engine_gives_503_and_not_ready()
    {
        await using TestServer server = await TestServer.StartAsync();
        await server.DisposeEngineAsync();
        var (status, body) = await server.Http.PostAsync("/v1/completions", Completion(server, 2));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
        HttpHelpers.AssertError(body, "service_unavailable_error", code: "engine_unavailable");
        using HttpResponseMessage ready = await server.Http.GetAsync("/ready");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
    }

    [Fact]
    public async Task A_full_queue_is_a_429()
    {
        await using TestServer server = await TestServer.StartAsync(new InfiniteOptions
        {
            KvType = DataType.F32, PageSize = 16, KvMemoryBytes = 4 << 20, MaxRunningRequests = 1, MaxQueuedRequests = 1,
        });
        // At most two requests fit (one running, one queued); sixteen long ones sent at once cannot all fit, however
        // fast the machine, so some must be refused with 429 while the admitted ones complete normally.
        (HttpStatusCode Status, JsonElement Body)[] results = await Task.WhenAll(Enumerable.Range(0, 16)
            .Select(_ => server.Http.PostAsync("/v1/completions", Completion(server, 1500))));
        Assert.Contains(results, r => r.Status == HttpStatusCode.TooManyRequests);
        Assert.Contains(results, r => r.Status == HttpStatusCode.OK);
        foreach (var (status, body) in results)
        {
            if (status == HttpStatusCode.TooManyRequests)
            {
                HttpHelpers.AssertError(body, "rate_limit_error", code: "engine_overloaded");
            }
            else
            {
                Assert.Equal(HttpStatusCode.OK, status);
            }
        }
        await server.WaitAllPagesFreeAsync();
    }

    [Fact]
    public async Task Shutdown_lets_an_in_flight_stream_finish_within_the_drain_timeout()
    {
        await using TestServer server = await TestServer.StartAsync(serverOptions: new InfiniteServerOptions
        {
            ShutdownDrainTimeout = TimeSpan.FromSeconds(30),
        });
        using HttpResponseMessage response = await server.Http.PostStreamAsync("/v1/completions", Completion(server, 300, stream: true));
        var events = new List<string>();
        Task stop = Task.CompletedTask;
        await foreach (string data in HttpHelpers.ReadEventsAsync(response))
        {
            events.Add(data);
            if (events.Count == 2)
                stop = server.App.StopAsync();   // shutdown begins with the stream in flight
        }
        await stop;
        Assert.Equal("[DONE]", events[^1]);
        using JsonDocument last = JsonDocument.Parse(events[^2]);
        Assert.Equal("length", last.RootElement.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.True(server.State.IsDraining);
        await Assert.ThrowsAsync<HttpRequestException>(() => server.Http.GetAsync(new Uri(server.BaseUrl + "/health")));
    }

    [Fact]
    public async Task Shutdown_cuts_streams_that_outlive_the_drain_timeout_and_frees_their_pages()
    {
        await using TestServer server = await TestServer.StartAsync(serverOptions: new InfiniteServerOptions
        {
            ShutdownDrainTimeout = TimeSpan.FromMilliseconds(100),
        });
        // Eight streams of 2000 tokens share the batch: seconds of work on this model, far past the 100 ms drain.
        const int streams = 8, tokens = 2000;
        var responses = await Task.WhenAll(Enumerable.Range(0, streams).Select(
            _ => server.Http.PostStreamAsync("/v1/completions", Completion(server, tokens, stream: true))));
        var readers = responses.Select(async r =>
        {
            try
            {
                await foreach (string data in HttpHelpers.ReadEventsAsync(r))
                {
                    if (data == "[DONE]")
                        return true;
                }
                return false;
            }
            catch (HttpRequestException)
            {
                return false;   // the connection was aborted mid-body
            }
            catch (IOException)
            {
                return false;
            }
        }).ToArray();
        await server.App.StopAsync();
        bool[] finished = await Task.WhenAll(readers);
        foreach (HttpResponseMessage r in responses)
            r.Dispose();
        await server.WaitAllPagesFreeAsync(TimeSpan.FromSeconds(5));
        Assert.Contains(false, finished);
        Assert.True(server.Engine.Engine.Stats.TokensOut < streams * tokens, "every stream ran to its end");
    }
}
