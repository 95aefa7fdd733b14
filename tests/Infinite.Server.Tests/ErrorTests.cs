using System.Net;
using System.Text;
using System.Text.Json;

namespace Infinite.Server.Tests;

/// <summary>Bad requests get OpenAI's error body and the right status; none of them disturbs the server.</summary>
public sealed class ErrorTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private TestServer Server => fixture.Server;

    private async Task<JsonElement> ExpectAsync(HttpStatusCode expected, string path, string json)
    {
        var (status, body) = await Server.Http.PostAsync(path, json);
        Assert.True(expected == status, $"expected {expected}, got {status}: {body}");
        return body;
    }

    [Theory]
    [InlineData("{\"model\": ")]
    [InlineData("not json at all")]
    [InlineData("")]
    [InlineData("{\"model\": \"x\",}")]
    public async Task Malformed_json_is_a_400(string json)
    {
        foreach (string path in new[] { "/v1/completions", "/v1/chat/completions" })
        {
            JsonElement error = HttpHelpers.AssertError(await ExpectAsync(HttpStatusCode.BadRequest, path, json), "invalid_request_error");
            Assert.Contains("JSON", error.GetProperty("message").GetString());
        }
    }

    [Fact]
    public async Task A_body_that_is_not_an_object_is_a_400()
        => HttpHelpers.AssertError(await ExpectAsync(HttpStatusCode.BadRequest, "/v1/completions", "[1, 2]"), "invalid_request_error");

    [Theory]
    [InlineData("/v1/completions", "\"prompt\": \"hi\", \"max_tokens\": \"ten\"", "max_tokens")]
    [InlineData("/v1/completions", "\"prompt\": \"hi\", \"max_tokens\": 1.5", "max_tokens")]
    [InlineData("/v1/completions", "\"prompt\": 12", "prompt")]
    [InlineData("/v1/completions", "\"prompt\": [\"a\", 1]", "prompt")]
    [InlineData("/v1/completions", "\"prompt\": [true]", "prompt[0]")]
    [InlineData("/v1/completions", "\"prompt\": \"hi\", \"temperature\": \"hot\"", "temperature")]
    [InlineData("/v1/completions", "\"prompt\": \"hi\", \"stream\": \"yes\"", "stream")]
    [InlineData("/v1/completions", "\"prompt\": \"hi\", \"stop\": 3", "stop")]
    [InlineData("/v1/completions", "\"prompt\": \"hi\", \"stop\": [\"a\", 3]", "stop[1]")]
    [InlineData("/v1/completions", "\"prompt\": \"hi\", \"seed\": \"s\"", "seed")]
    [InlineData("/v1/completions", "\"prompt\": \"hi\", \"stream_options\": true", "stream_options")]
    [InlineData("/v1/completions", "\"prompt\": \"hi\", \"stream_options\": {\"include_usage\": 1}", "stream_options.include_usage")]
    [InlineData("/v1/chat/completions", "\"messages\": \"hi\"", "messages")]
    [InlineData("/v1/chat/completions", "\"messages\": [\"hi\"]", "messages[0]")]
    [InlineData("/v1/chat/completions", "\"messages\": [{\"role\": 1, \"content\": \"hi\"}]", "messages[0].role")]
    [InlineData("/v1/chat/completions", "\"messages\": [{\"role\": \"user\", \"content\": 5}]", "messages[0].content")]
    [InlineData("/v1/chat/completions", "\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": 5}]}]", "messages[0].content[0].text")]
    [InlineData("/v1/chat/completions", "\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"top_k\": 2.5", "top_k")]
    [InlineData("/v1/chat/completions", "\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_completion_tokens\": []", "max_completion_tokens")]
    public async Task A_field_of_the_wrong_type_is_a_400_naming_it(string path, string fields, string param)
    {
        JsonElement body = await ExpectAsync(HttpStatusCode.BadRequest, path, $$"""{"model": "{{Server.ModelId}}", {{fields}}}""");
        JsonElement error = HttpHelpers.AssertError(body, "invalid_request_error", param);
        Assert.Contains(param, error.GetProperty("message").GetString());
    }

    [Theory]
    [InlineData("\"prompt\": \"hi\", \"temperature\": -1", "temperature")]
    [InlineData("\"prompt\": \"hi\", \"top_p\": 0", "top_p")]
    [InlineData("\"prompt\": \"hi\", \"temperature\": 1e400", "temperature")]
    [InlineData("\"prompt\": \"hi\", \"max_tokens\": 99999999999", "max_tokens")]
    [InlineData("\"prompt\": \"hi\", \"seed\": 1e30", "seed")]
    [InlineData("\"prompt\": \"hi\", \"max_tokens\": 0", "max_tokens")]
    [InlineData("\"prompt\": \"hi\", \"presence_penalty\": 3", "presence_penalty")]
    [InlineData("\"prompt\": \"hi\", \"stop\": [\"\"]", "stop")]
    [InlineData("\"prompt\": \"hi\", \"stop\": [\"a\", \"b\", \"c\", \"d\", \"e\"]", "stop")]
    [InlineData("\"prompt\": \"\"", "prompt")]
    [InlineData("\"prompt\": [999999]", "prompt[0]")]
    [InlineData("\"prompt\": \"hi\", \"n\": 2", "n")]
    [InlineData("\"prompt\": \"hi\", \"echo\": true", "echo")]
    [InlineData("\"prompt\": \"hi\", \"best_of\": 3", "best_of")]
    [InlineData("\"prompt\": \"hi\", \"logit_bias\": {\"5\": 10}", "logit_bias")]
    public async Task An_out_of_range_or_unsupported_completions_value_is_a_400(string fields, string param)
        => HttpHelpers.AssertError(await ExpectAsync(HttpStatusCode.BadRequest, "/v1/completions",
            $$"""{"model": "{{Server.ModelId}}", {{fields}}}"""), "invalid_request_error", param);

    [Fact]
    public async Task Logprobs_are_refused_saying_they_are_unsupported()
    {
        foreach (var (path, fields) in new[]
                 {
                     ("/v1/completions", "\"prompt\": \"hi\", \"logprobs\": 2"),
                     ("/v1/chat/completions", "\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"logprobs\": true"),
                 })
        {
            JsonElement error = HttpHelpers.AssertError(await ExpectAsync(HttpStatusCode.BadRequest, path,
                $$"""{"model": "{{Server.ModelId}}", {{fields}}}"""), "invalid_request_error", "logprobs");
            Assert.Contains("not supported", error.GetProperty("message").GetString());
        }
    }

    [Theory]
    [InlineData("[{\"role\": \"tool\", \"content\": \"x\"}]", "messages[0].role")]
    [InlineData("[{\"role\": \"user\", \"content\": [{\"type\": \"image_url\", \"image_url\": {}}]}]", "messages[0].content[0].type")]
    [InlineData("[{\"role\": \"user\"}]", "messages[0].content")]
    [InlineData("[]", "messages")]
    [InlineData("[{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"system\", \"content\": \"late\"}]", "messages")]
    public async Task A_bad_chat_message_is_a_400(string messages, string param)
        => HttpHelpers.AssertError(await ExpectAsync(HttpStatusCode.BadRequest, "/v1/chat/completions",
            $$"""{"model": "{{Server.ModelId}}", "messages": {{messages}}}"""), "invalid_request_error", param);

    [Fact]
    public async Task A_missing_model_is_a_400_and_an_unknown_one_a_404()
    {
        HttpHelpers.AssertError(await ExpectAsync(HttpStatusCode.BadRequest, "/v1/completions", "{\"prompt\": \"hi\"}"),
            "invalid_request_error", "model", "missing_required_parameter");
        JsonElement error = HttpHelpers.AssertError(await ExpectAsync(HttpStatusCode.NotFound, "/v1/chat/completions",
                "{\"model\": \"llama-9000\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}"),
            "invalid_request_error", "model", "model_not_found");
        Assert.Contains("llama-9000", error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task A_body_over_the_limit_is_a_413()
    {
        // With Content-Length the server refuses before reading; "Expect: 100-continue" keeps the client from
        // sending the 5 MiB the server will never read (without it the client may see a reset, not the answer).
        string json = $$"""{"model": "{{Server.ModelId}}", "prompt": "{{new string('a', 5 << 20)}}"}""";
        using var sized = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = HttpHelpers.Json(json) };
        sized.Headers.ExpectContinue = true;
        using HttpResponseMessage response = await Server.Http.SendAsync(sized);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        JsonElement error = HttpHelpers.AssertError(await HttpHelpers.ReadJsonAsync(response), "invalid_request_error",
            code: "request_too_large");
        Assert.Contains((4 << 20).ToString(System.Globalization.CultureInfo.InvariantCulture), error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task A_chunked_body_over_the_limit_is_a_413()
    {
        // No Content-Length: Kestrel counts while the JSON parser reads. Only a few bytes past the limit, so the
        // client has sent everything before the server answers and closes.
        string json = $$"""{"model": "{{Server.ModelId}}", "prompt": "{{new string('a', (4 << 20) + 16)}}"}""";
        using var chunked = new HttpRequestMessage(HttpMethod.Post, "/v1/completions")
        {
            Content = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(json))),
        };
        chunked.Headers.TransferEncodingChunked = true;
        using HttpResponseMessage response = await Server.Http.SendAsync(chunked);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        HttpHelpers.AssertError(await HttpHelpers.ReadJsonAsync(response), "invalid_request_error", code: "request_too_large");
    }

    [Fact]
    public async Task A_prompt_longer_than_the_context_is_a_400_with_both_numbers()
    {
        string prompt = string.Concat(Enumerable.Repeat("the mill and the river ", 700));
        int tokens = Server.Engine.Tokenizer.Encode(prompt).Length;
        Assert.True(tokens > 2048, $"the test prompt has only {tokens} tokens");
        JsonElement error = HttpHelpers.AssertError(await ExpectAsync(HttpStatusCode.BadRequest, "/v1/completions",
            $$"""{"model": "{{Server.ModelId}}", "prompt": "{{prompt}}", "max_tokens": 4}"""), "invalid_request_error");
        string message = error.GetProperty("message").GetString()!;
        Assert.Contains(tokens.ToString(System.Globalization.CultureInfo.InvariantCulture), message);
        Assert.Contains("2048", message);
        Assert.DoesNotContain("Parameter", message);
    }

    [Fact]
    public async Task Unknown_paths_and_wrong_methods_get_json_errors()
    {
        using HttpResponseMessage missing = await Server.Http.GetAsync("/v1/embeddings");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        HttpHelpers.AssertError(await HttpHelpers.ReadJsonAsync(missing), "invalid_request_error", code: "unknown_url");
        using HttpResponseMessage wrong = await Server.Http.GetAsync("/v1/completions");
        Assert.Equal(HttpStatusCode.MethodNotAllowed, wrong.StatusCode);
        HttpHelpers.AssertError(await HttpHelpers.ReadJsonAsync(wrong), "invalid_request_error", code: "method_not_allowed");
        using HttpResponseMessage model = await Server.Http.GetAsync("/v1/models/nope");
        Assert.Equal(HttpStatusCode.NotFound, model.StatusCode);
        HttpHelpers.AssertError(await HttpHelpers.ReadJsonAsync(model), "invalid_request_error", code: "model_not_found");
    }

    [Fact]
    public async Task After_all_the_bad_requests_the_server_still_answers_and_holds_no_pages()
    {
        await A_missing_model_is_a_400_and_an_unknown_one_a_404();
        var (status, _) = await Server.Http.PostAsync("/v1/completions",
            $$"""{"model": "{{Server.ModelId}}", "prompt": "hi", "max_tokens": 2}""");
        Assert.Equal(HttpStatusCode.OK, status);
        await Server.WaitAllPagesFreeAsync();
    }

    [Fact]
    public async Task Every_field_with_every_kind_of_value_gets_a_200_or_a_400_never_a_500()
    {
        string[] fields =
        [
            "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "min_p", "seed", "stop", "stream",
            "stream_options", "presence_penalty", "frequency_penalty", "repetition_penalty", "n", "echo", "logprobs",
            "top_logprobs", "best_of", "suffix", "logit_bias", "ignore_eos", "response_format", "tools", "user",
        ];
        string[] values = ["\"s\"", "[]", "{}", "true", "false", "-1", "0", "1.5", "3", "null", "[\"a\"]", "{\"type\": \"json_object\"}"];
        foreach (string field in fields)
        {
            foreach (string value in values)
            {
                foreach (var (path, prompt) in new[]
                         {
                             ("/v1/completions", "\"prompt\": \"hi\""),
                             ("/v1/chat/completions", "\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]"),
                         })
                {
                    // max_tokens 2 unless the field under test is a token limit, so each accepted request is short.
                    string limit = field.StartsWith("max_", StringComparison.Ordinal) ? "" : "\"max_tokens\": 2, ";
                    string json = $$"""{"model": "{{Server.ModelId}}", {{prompt}}, {{limit}}"{{field}}": {{value}}}""";
                    using HttpResponseMessage response = await Server.Http.PostAsync(path, HttpHelpers.Json(json));
                    string body = await response.Content.ReadAsStringAsync();
                    Assert.True(response.StatusCode is HttpStatusCode.OK or HttpStatusCode.BadRequest, $"{json} -> {(int)response.StatusCode} {body}");
                    if (response.StatusCode == HttpStatusCode.BadRequest)
                        HttpHelpers.AssertError(JsonDocument.Parse(body).RootElement, "invalid_request_error");
                }
            }
        }
        await Server.WaitAllPagesFreeAsync();
    }
}
