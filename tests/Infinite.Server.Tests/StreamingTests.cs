using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace Infinite.Server.Tests;

/// <summary>Many streams at once, and clients that leave mid-stream.</summary>
public sealed class StreamingTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private TestServer Server => fixture.Server;

    [Fact]
    public async Task Twenty_concurrent_streams_each_get_their_own_complete_answer()
    {
        const int streams = 20;
        string Body(int i) => $$$"""{"model": "{{{Server.ModelId}}}", "messages": [{"role": "user", "content": "Story number {{{i}}}"}], "max_tokens": 24, "temperature": 0, "ignore_eos": true, "stream": true, "stream_options": {"include_usage": true}}""";

        // Greedy answers one at a time are the reference: batching must not change them.
        var expected = new string[streams];
        for (int i = 0; i < streams; i++)
        {
            var (status, body) = await Server.Http.PostAsync("/v1/chat/completions", Body(i).Replace("\"stream\": true", "\"stream\": false", StringComparison.Ordinal));
            Assert.Equal(HttpStatusCode.OK, status);
            expected[i] = body.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;
        }

        string[] texts = await Task.WhenAll(Enumerable.Range(0, streams).Select(async i =>
        {
            using HttpResponseMessage response = await Server.Http.PostStreamAsync("/v1/chat/completions", Body(i));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            List<JsonElement> chunks = await HttpHelpers.ReadChunksAsync(response);
            Assert.Single(chunks.Select(c => c.GetProperty("id").GetString()).Distinct());
            Assert.Equal(24, chunks[^1].GetProperty("usage").GetProperty("completion_tokens").GetInt32());
            return string.Concat(chunks.SkipLast(1).Select(c =>
                c.GetProperty("choices")[0].GetProperty("delta").TryGetProperty("content", out JsonElement t) ? t.GetString() : ""));
        }));
        Assert.Equal(expected, texts);
        await Server.WaitAllPagesFreeAsync();
    }

    [Fact]
    public async Task A_client_that_disconnects_mid_stream_frees_its_pages_at_once()
    {
        // A raw socket, closed after a few events: HttpClient would instead drain the rest of the response to reuse
        // the connection, which is not a disconnect. 2000 tokens: the token check below fails if only the end of the
        // generation freed the pages.
        string body = $$"""{"model": "{{Server.ModelId}}", "prompt": "The mill", "max_tokens": 2000, "ignore_eos": true, "stream": true}""";
        var uri = new Uri(Server.BaseUrl);
        using (var client = new TcpClient())
        {
            await client.ConnectAsync(uri.Host, uri.Port);
            NetworkStream stream = client.GetStream();
            byte[] payload = Encoding.UTF8.GetBytes(body);
            await stream.WriteAsync(Encoding.ASCII.GetBytes(
                $"POST /v1/completions HTTP/1.1\r\nHost: {uri.Authority}\r\nContent-Type: application/json\r\nContent-Length: {payload.Length}\r\n\r\n"));
            await stream.WriteAsync(payload);
            var received = new StringBuilder();
            var buffer = new byte[4096];
            while (CountOf(received.ToString(), "data: ") < 5)
            {
                int n = await stream.ReadAsync(buffer);
                Assert.True(n > 0, $"the server closed the stream early: {received}");
                received.Append(Encoding.UTF8.GetString(buffer, 0, n));
            }
            Assert.StartsWith("HTTP/1.1 200", received.ToString());
            Assert.True(Server.Engine.Engine.Stats.PagesUsed > 0, "the stream holds no pages while it runs");
        }
        long tokensBefore = Server.Engine.Engine.Stats.TokensOut;
        await Server.WaitAllPagesFreeAsync(TimeSpan.FromSeconds(5));
        Assert.True(Server.Engine.Engine.Stats.TokensOut - tokensBefore < 1900, "the generation ran to its end");
    }

    private static int CountOf(string text, string part)
    {
        int count = 0;
        for (int i = text.IndexOf(part, StringComparison.Ordinal); i >= 0; i = text.IndexOf(part, i + 1, StringComparison.Ordinal))
            count++;
        return count;
    }

    [Fact]
    public async Task A_client_that_disconnects_before_a_whole_answer_frees_its_pages()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        string body = $$"""{"model": "{{Server.ModelId}}", "prompt": "The mill", "max_tokens": 2000, "ignore_eos": true}""";
        await Assert.ThrowsAnyAsync<OperationCanceledException>(
            () => Server.Http.PostAsync("/v1/completions", HttpHelpers.Json(body), cts.Token));
        await Server.WaitAllPagesFreeAsync(TimeSpan.FromSeconds(5));
    }
}
