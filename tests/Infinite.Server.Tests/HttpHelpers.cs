using System.Net;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;

namespace Infinite.Server.Tests;

/// <summary>Raw HTTP helpers: JSON posts, error-body checks and a server-sent-event reader.</summary>
internal static class HttpHelpers
{
    public static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    public static async Task<(HttpStatusCode Status, JsonElement Body)> PostAsync(this HttpClient http, string path,
        string json)
    {
        using HttpResponseMessage response = await http.PostAsync(path, Json(json));
        return (response.StatusCode, await ReadJsonAsync(response));
    }

    public static async Task<JsonElement> ReadJsonAsync(HttpResponseMessage response)
    {
        string text = await response.Content.ReadAsStringAsync();
        Assert.True(response.Content.Headers.ContentType?.MediaType == "application/json",
            $"expected JSON, got {response.Content.Headers.ContentType}: {text}");
        using JsonDocument doc = JsonDocument.Parse(text);
        return doc.RootElement.Clone();
    }

    /// <summary>Checks OpenAI's error shape: exactly message, type, param and code; returns the error object.</summary>
    public static JsonElement AssertError(JsonElement body, string type, string? param = null, string? code = null)
    {
        JsonElement error = body.GetProperty("error");
        Assert.Equal(["code", "message", "param", "type"], error.EnumerateObject().Select(p => p.Name).Order());
        Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("message").GetString()));
        Assert.Equal(type, error.GetProperty("type").GetString());
        if (param is not null)
            Assert.Equal(param, error.GetProperty("param").GetString());
        if (code is not null)
            Assert.Equal(code, error.GetProperty("code").GetString());
        return error;
    }

    public static async Task<HttpResponseMessage> PostStreamAsync(this HttpClient http, string path, string json,
        CancellationToken cancellationToken = default)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = Json(json) };
        HttpResponseMessage response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        return response;
    }

    /// <summary>The payloads of <c>data:</c> events, "[DONE]" included; checks the blank line after each.</summary>
    public static async IAsyncEnumerable<string> ReadEventsAsync(HttpResponseMessage response,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellationToken));
        while (await reader.ReadLineAsync(cancellationToken) is string line)
        {
            Assert.StartsWith("data: ", line);
            Assert.Equal("", await reader.ReadLineAsync(cancellationToken));
            yield return line["data: ".Length..];
        }
    }

    /// <summary>Reads a whole stream: the JSON chunks before [DONE] (asserting [DONE] comes last).</summary>
    public static async Task<List<JsonElement>> ReadChunksAsync(HttpResponseMessage response)
    {
        var chunks = new List<JsonElement>();
        bool done = false;
        await foreach (string data in ReadEventsAsync(response))
        {
            Assert.False(done, "an event after [DONE]");
            if (data == "[DONE]")
            {
                done = true;
                continue;
            }
            using JsonDocument doc = JsonDocument.Parse(data);
            chunks.Add(doc.RootElement.Clone());
        }
        Assert.True(done, "the stream did not end with [DONE]");
        return chunks;
    }
}
