using System.Net;
using System.Text.Json;

namespace Infinite.Server.Tests;

/// <summary>/v1/completions over raw HTTP (the OpenAI .NET client has no legacy completions).</summary>
public sealed class CompletionsTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private TestServer Server => fixture.Server;

    private string Body(string extra) => $$"""{"model": "{{Server.ModelId}}", "prompt": "The river ran past the old mill", {{extra}}}""";

    private async Task<JsonElement> CompleteAsync(string extra)
    {
        var (status, body) = await Server.Http.PostAsync("/v1/completions", Body(extra));
        Assert.True(status == HttpStatusCode.OK, body.ToString());
        return body;
    }

    [Fact]
    public async Task A_completion_has_openai_shape_and_usage()
    {
        JsonElement body = await CompleteAsync("\"max_tokens\": 8, \"temperature\": 0, \"ignore_eos\": true");
        Assert.StartsWith("cmpl-", body.GetProperty("id").GetString());
        Assert.Equal("text_completion", body.GetProperty("object").GetString());
        Assert.Equal(Server.ModelId, body.GetProperty("model").GetString());
        Assert.InRange(body.GetProperty("created").GetInt64(), DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 60,
            DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 1);
        JsonElement choice = Assert.Single(body.GetProperty("choices").EnumerateArray());
        Assert.Equal(0, choice.GetProperty("index").GetInt32());
        Assert.Equal(JsonValueKind.String, choice.GetProperty("text").ValueKind);
        Assert.Equal("length", choice.GetProperty("finish_reason").GetString());
        JsonElement usage = body.GetProperty("usage");
        int prompt = Server.Engine.Tokenizer.Encode("The river ran past the old mill").Length;
        Assert.Equal(prompt, usage.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(8, usage.GetProperty("completion_tokens").GetInt32());
        Assert.Equal(prompt + 8, usage.GetProperty("total_tokens").GetInt32());
    }

    [Fact]
    public async Task Max_tokens_defaults_to_16_as_openai()
    {
        JsonElement body = await CompleteAsync("\"temperature\": 0, \"ignore_eos\": true");
        Assert.Equal(16, body.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task A_stop_sequence_cuts_the_text_before_it_and_finishes_with_stop()
    {
        string full = (await CompleteAsync("\"max_tokens\": 24, \"temperature\": 0, \"ignore_eos\": true"))
            .GetProperty("choices")[0].GetProperty("text").GetString()!;
        Assert.True(full.Length >= 8, $"greedy text too short to cut: '{full}'");
        string stop = full.Substring(full.Length / 2, 2);
        string expected = full[..full.IndexOf(stop, StringComparison.Ordinal)];
        foreach (string stopJson in new[] { JsonSerializer.Serialize(stop), JsonSerializer.Serialize(new[] { "\u0001never", stop }) })
        {
            JsonElement choice = (await CompleteAsync($"\"max_tokens\": 24, \"temperature\": 0, \"ignore_eos\": true, \"stop\": {stopJson}"))
                .GetProperty("choices")[0];
            Assert.Equal(expected, choice.GetProperty("text").GetString());
            Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
        }
    }

    [Fact]
    public async Task A_prompt_as_an_array_of_one_string_or_of_token_ids_is_the_same_prompt()
    {
        string asText = (await CompleteAsync("\"max_tokens\": 6, \"temperature\": 0")).GetProperty("choices")[0].ToString();
        string ids = JsonSerializer.Serialize(Server.Engine.Tokenizer.Encode("The river ran past the old mill"));
        foreach (string prompt in new[] { "[\"The river ran past the old mill\"]", ids })
        {
            var (status, body) = await Server.Http.PostAsync("/v1/completions",
                $$"""{"model": "{{Server.ModelId}}", "prompt": {{prompt}}, "max_tokens": 6, "temperature": 0}""");
            Assert.Equal(HttpStatusCode.OK, status);
            Assert.Equal(asText, body.GetProperty("choices")[0].ToString());
        }
    }

    [Fact]
    public async Task Streaming_sends_text_chunks_then_done_and_a_usage_chunk_when_asked()
    {
        string whole = (await CompleteAsync("\"max_tokens\": 10, \"temperature\": 0, \"ignore_eos\": true"))
            .GetProperty("choices")[0].GetProperty("text").GetString()!;
        using HttpResponseMessage response = await Server.Http.PostStreamAsync("/v1/completions",
            Body("\"max_tokens\": 10, \"temperature\": 0, \"ignore_eos\": true, \"stream\": true, \"stream_options\": {\"include_usage\": true}"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        List<JsonElement> chunks = await HttpHelpers.ReadChunksAsync(response);
        Assert.True(chunks.Count >= 2);
        string id = chunks[0].GetProperty("id").GetString()!;
        Assert.StartsWith("cmpl-", id);
        Assert.All(chunks, c =>
        {
            Assert.Equal(id, c.GetProperty("id").GetString());
            Assert.Equal("text_completion", c.GetProperty("object").GetString());
        });
        List<JsonElement> withChoices = chunks[..^1];
        Assert.Equal(whole, string.Concat(withChoices.Select(c => c.GetProperty("choices")[0].GetProperty("text").GetString())));
        Assert.All(withChoices[..^1], c => Assert.Equal(JsonValueKind.Null, c.GetProperty("choices")[0].GetProperty("finish_reason").ValueKind));
        Assert.Equal("length", withChoices[^1].GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        JsonElement last = chunks[^1];
        Assert.Equal(0, last.GetProperty("choices").GetArrayLength());
        Assert.Equal(10, last.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task Streaming_without_include_usage_has_no_usage_chunk()
    {
        using HttpResponseMessage response = await Server.Http.PostStreamAsync("/v1/completions",
            Body("\"max_tokens\": 4, \"temperature\": 0, \"ignore_eos\": true, \"stream\": true"));
        List<JsonElement> chunks = await HttpHelpers.ReadChunksAsync(response);
        Assert.All(chunks, c => Assert.Equal(1, c.GetProperty("choices").GetArrayLength()));
        Assert.All(chunks, c => Assert.False(c.TryGetProperty("usage", out _)));
    }

    [Fact]
    public async Task Chat_streaming_opens_with_the_assistant_role_and_closes_with_an_empty_delta()
    {
        using HttpResponseMessage response = await Server.Http.PostStreamAsync("/v1/chat/completions",
            $$"""{"model": "{{Server.ModelId}}", "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}], "max_completion_tokens": 5, "temperature": 0, "ignore_eos": true, "stream": true}""");
        List<JsonElement> chunks = await HttpHelpers.ReadChunksAsync(response);
        Assert.All(chunks, c => Assert.Equal("chat.completion.chunk", c.GetProperty("object").GetString()));
        JsonElement first = chunks[0].GetProperty("choices")[0].GetProperty("delta");
        Assert.Equal("assistant", first.GetProperty("role").GetString());
        JsonElement last = chunks[^1].GetProperty("choices")[0];
        Assert.Equal("length", last.GetProperty("finish_reason").GetString());
        Assert.Empty(last.GetProperty("delta").EnumerateObject());
        Assert.All(chunks.Skip(1).SkipLast(1), c => Assert.False(c.GetProperty("choices")[0].GetProperty("delta").TryGetProperty("role", out _)));
    }

    [Fact]
    public async Task Non_ascii_text_goes_in_and_comes_out_as_utf8_json()
    {
        using HttpResponseMessage response = await Server.Http.PostAsync("/v1/chat/completions", HttpHelpers.Json(
            $$"""{"model": "{{Server.ModelId}}", "messages": [{"role": "developer", "content": "Ünïcödé"}, {"role": "user", "content": "emoji 🙂 and \"quotes\" <tags>"}], "max_tokens": 8, "temperature": 0}"""));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        string raw = await response.Content.ReadAsStringAsync();
        using JsonDocument doc = JsonDocument.Parse(raw);
        JsonElement message = doc.RootElement.GetProperty("choices")[0].GetProperty("message");
        Assert.Equal("assistant", message.GetProperty("role").GetString());

        // Text echoed back (here in an error) is written as UTF-8, not as \uXXXX escapes.
        using HttpResponseMessage unknown = await Server.Http.PostAsync("/v1/completions",
            HttpHelpers.Json("""{"model": "módel-ü <x>", "prompt": "hi"}"""));
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Contains("'módel-ü <x>'", await unknown.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }
}
