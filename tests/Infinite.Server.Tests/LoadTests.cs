using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using Xunit.Abstractions;

namespace Infinite.Server.Tests;

/// <summary>
/// 64 streaming clients on loopback for a fixed time, each sending its next request as soon as the last ends.
/// 30 s by default (the figure); INFINITE_LOAD_TEST_SECONDS overrides it (e.g. 5 for a quick local
/// run). Passes only with zero errors and every KV page free afterwards; prints the requests/s and tokens/s.
/// </summary>
public sealed class LoadTests(ITestOutputHelper output)
{
    private const int Clients = 64;
    private const int MaxTokens = 32;

    private static TimeSpan Duration
        => TimeSpan.FromSeconds(int.TryParse(Environment.GetEnvironmentVariable("INFINITE_LOAD_TEST_SECONDS"),
            NumberStyles.Integer, CultureInfo.InvariantCulture, out int s) && s > 0 ? s : 30);

    [Fact]
    public async Task Sixty_four_streaming_clients_see_no_errors_and_leave_every_page_free()
    {
        await using TestServer server = await TestServer.StartAsync(new InfiniteOptions
        {
            KvType = Native.DataType.F32, PageSize = 16, KvMemoryBytes = 8 << 20, MaxRunningRequests = 64,
        });
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = Clients })
        {
            BaseAddress = new Uri(server.BaseUrl),
            Timeout = TimeSpan.FromMinutes(1),
        };
        TimeSpan duration = Duration;
        var clock = Stopwatch.StartNew();
        var errors = new List<string>();
        long requests = 0, tokens = 0;

        async Task ClientAsync(int client)
        {
            for (int i = 0; clock.Elapsed < duration; i++)
            {
                string body = $$$"""{"model": "{{{server.ModelId}}}", "messages": [{"role": "user", "content": "Client {{{client}}} asks question {{{i}}}"}], "max_tokens": {{{MaxTokens}}}, "temperature": 0.8, "stream": true, "stream_options": {"include_usage": true}}""";
                try
                {
                    using HttpResponseMessage response = await http.PostStreamAsync("/v1/chat/completions", body);
                    if (response.StatusCode != HttpStatusCode.OK)
                        throw new InvalidOperationException($"status {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
                    List<JsonElement> chunks = await HttpHelpers.ReadChunksAsync(response);
                    int generated = chunks[^1].GetProperty("usage").GetProperty("completion_tokens").GetInt32();
                    if (generated is < 1 or > MaxTokens)
                        throw new InvalidOperationException($"{generated} tokens generated");
                    Interlocked.Increment(ref requests);
                    Interlocked.Add(ref tokens, generated);
                }
                catch (Exception e)
                {
                    lock (errors)
                        errors.Add($"client {client} request {i}: {e.GetType().Name}: {e.Message}");
                }
            }
        }

        await Task.WhenAll(Enumerable.Range(0, Clients).Select(ClientAsync));
        double seconds = clock.Elapsed.TotalSeconds;
        string report = string.Create(CultureInfo.InvariantCulture,
            $"load: {Clients} streaming clients for {seconds:F1} s: {requests} requests ({requests / seconds:F1}/s), {tokens} tokens ({tokens / seconds:F0}/s), {errors.Count} errors");
        output.WriteLine(report);
        Console.WriteLine(report);
        Assert.True(errors.Count == 0, string.Join("\n", errors.Take(10)));
        Assert.True(requests >= Clients, $"only {requests} requests finished");
        await server.WaitAllPagesFreeAsync();
    }
}
