using System.Buffers;
using System.IO.Pipelines;
using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace Infinite.Server.Api;

/// <summary>Writes <c>data: {json}\n\n</c> events straight into the response pipe, one flush per event so each
/// token leaves as soon as it is sampled.</summary>
internal sealed class ServerSentEvents : IAsyncDisposable
{
    private readonly PipeWriter _pipe;
    private readonly Utf8JsonWriter _json;
    private readonly CancellationToken _aborted;

    public ServerSentEvents(HttpResponse response, CancellationToken aborted)
    {
        response.StatusCode = 200;
        response.ContentType = "text/event-stream; charset=utf-8";
        response.Headers.CacheControl = "no-cache";
        // Proxies such as nginx buffer responses unless told not to.
        response.Headers["X-Accel-Buffering"] = "no";
        _pipe = response.BodyWriter;
        _json = JsonOutput.CreateWriter(_pipe);
        _aborted = aborted;
    }

    /// <summary>Starts an event; write exactly one JSON value, then <see cref="EndEventAsync"/>.</summary>
    public Utf8JsonWriter BeginEvent()
    {
        _pipe.Write("data: "u8);
        _json.Reset(_pipe);
        return _json;
    }

    public ValueTask EndEventAsync()
    {
        _json.Flush();
        _pipe.Write("\n\n"u8);
        return FlushAsync();
    }

    public ValueTask DoneAsync()
    {
        _pipe.Write("data: [DONE]\n\n"u8);
        return FlushAsync();
    }

    private async ValueTask FlushAsync()
    {
        FlushResult result = await _pipe.FlushAsync(_aborted).ConfigureAwait(false);
        // The client went away: stop so the generation is cancelled and its KV pages freed.
        if (result.IsCompleted || result.IsCanceled)
            throw new ClientDisconnectedException(_aborted);
    }

    public ValueTask DisposeAsync() => _json.DisposeAsync();
}
