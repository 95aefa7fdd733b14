using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Infinite.Engine;
using Infinite.Server.Metrics;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Infinite.Server.Api;

/// <summary>POST /v1/completions and /v1/chat/completions: parse, submit to the engine, answer whole or as a
/// server-sent event stream. The request's abort token is the generation's, so a client that leaves frees its KV
/// pages at once.</summary>
internal sealed class GenerationEndpoints
{
    private readonly InfiniteEngine _engine;
    private readonly ServerState _state;
    private readonly ServerMetrics _metrics;
    private readonly ILogger _logger;
    private readonly long _maxBodyBytes;

    public GenerationEndpoints(InfiniteEngine engine, ServerState state, ServerMetrics metrics, ILogger logger,
        long maxBodyBytes)
    {
        _engine = engine;
        _state = state;
        _metrics = metrics;
        _logger = logger;
        _maxBodyBytes = maxBodyBytes;
    }

    public Task CompletionsAsync(HttpContext context)
        => HandleAsync(context, CompletionShape.Instance, CompletionRequestParser.Parse);

    public Task ChatCompletionsAsync(HttpContext context)
        => HandleAsync(context, ChatShape.Instance, ChatRequestParser.Parse);

    private async Task HandleAsync(HttpContext context, ResponseShape shape,
        Func<JsonElement, InfiniteEngine, string, PreparedGeneration> parse)
    {
        long arrived = Stopwatch.GetTimestamp();
        if (_state.NotAcceptingReason is string reason)
            throw new ApiException(503, reason, ApiErrorTypes.Unavailable, null, "server_not_ready");
        PreparedGeneration generation;
        using (JsonDocument body = await RequestBody.ReadObjectAsync(context, _maxBodyBytes).ConfigureAwait(false))
            generation = parse(body.RootElement, _engine, _state.ModelId);

        CancellationToken aborted = context.RequestAborted;
        IAsyncEnumerable<GeneratedToken> tokens = Submit(generation.Request, aborted);
        var reply = new Reply(shape, shape.IdPrefix + Guid.NewGuid().ToString("N"),
            DateTimeOffset.UtcNow.ToUnixTimeSeconds(), _state.ModelId, generation.PromptTokens);
        var clock = new TokenClock(_metrics, arrived);
        try
        {
            if (generation.Parameters.Stream)
                await StreamAsync(context, reply, tokens, clock, generation.Parameters.IncludeUsage).ConfigureAwait(false);
            else
                await AnswerAsync(context, reply, tokens, clock).ConfigureAwait(false);
        }
        finally
        {
            _metrics.PromptTokens.Add(generation.PromptTokens);
            _metrics.CompletionTokens.Add(clock.Tokens);
        }
    }

    /// <summary>The engine validates and queues here, before anything is written, so refusals get their status.</summary>
    private IAsyncEnumerable<GeneratedToken> Submit(GenerationRequest request, CancellationToken aborted)
    {
        try
        {
            return _engine.GenerateAsync(request, aborted);
        }
        catch (ArgumentException e)
        {
            throw ApiException.FromArgument(e);
        }
        catch (EngineOverloadedException e)
        {
            throw new ApiException(429, $"{e.Message} Retry later.", ApiErrorTypes.RateLimit, null, "engine_overloaded");
        }
        catch (InvalidOperationException e)
        {
            // ObjectDisposedException included: the engine is gone or stopped after an internal error.
            string why = e is ObjectDisposedException ? "The engine has been shut down." : e.Message;
            _state.MarkEngineUnavailable(why);
            throw new ApiException(503, why, ApiErrorTypes.Unavailable, null, "engine_unavailable");
        }
    }

    private async Task AnswerAsync(HttpContext context, Reply reply, IAsyncEnumerable<GeneratedToken> tokens,
        TokenClock clock)
    {
        var text = new StringBuilder();
        FinishReason finish = FinishReason.Length;
        try
        {
            await foreach (GeneratedToken token in tokens.ConfigureAwait(false))
            {
                clock.Tick();
                text.Append(token.Text);
                finish = token.FinishReason ?? finish;
            }
        }
        catch (OperationCanceledException) when (!context.RequestAborted.IsCancellationRequested)
        {
            throw EngineStopped();
        }
        context.Response.StatusCode = 200;
        context.Response.ContentType = "application/json";
        await using (var w = JsonOutput.CreateWriter(context.Response.BodyWriter))
        {
            reply.Shape.WriteCompletion(w, reply.Id, reply.Created, reply.Model, text.ToString(), finish,
                new GenerationUsage(reply.PromptTokens, clock.Tokens));
        }
    }

    private async Task StreamAsync(HttpContext context, Reply reply, IAsyncEnumerable<GeneratedToken> tokens,
        TokenClock clock, bool includeUsage)
    {
        await using var events = new ServerSentEvents(context.Response, context.RequestAborted);
        ResponseShape shape = reply.Shape;
        if (shape.HasRoleChunk)
        {
            shape.WriteChunk(events.BeginEvent(), reply.Id, reply.Created, reply.Model, null, null, includeUsage,
                roleChunk: true);
            await events.EndEventAsync().ConfigureAwait(false);
        }
        try
        {
            await foreach (GeneratedToken token in tokens.ConfigureAwait(false))
            {
                clock.Tick();
                if (token.FinishReason is FinishReason finish)
                {
                    // Chat ends with an empty delta that carries the reason; completions put it on the last text.
                    if (shape.HasRoleChunk && token.Text.Length > 0)
                    {
                        shape.WriteChunk(events.BeginEvent(), reply.Id, reply.Created, reply.Model, token.Text, null, includeUsage);
                        await events.EndEventAsync().ConfigureAwait(false);
                    }
                    string? last = shape.HasRoleChunk ? null : token.Text;
                    shape.WriteChunk(events.BeginEvent(), reply.Id, reply.Created, reply.Model, last, finish, includeUsage);
                    await events.EndEventAsync().ConfigureAwait(false);
                }
                else if (token.Text.Length > 0)
                {
                    shape.WriteChunk(events.BeginEvent(), reply.Id, reply.Created, reply.Model, token.Text, null, includeUsage);
                    await events.EndEventAsync().ConfigureAwait(false);
                }
            }
        }
        catch (Exception e) when (!context.RequestAborted.IsCancellationRequested && e is not ClientDisconnectedException
                                  && e is OperationCanceledException or InvalidOperationException)
        {
            // Headers are out, so the status cannot change: the error goes into the stream, as OpenAI does.
            ApiException error = e is OperationCanceledException
                ? EngineStopped()
                : new ApiException(500, "The server had an error while generating the response.", ApiErrorTypes.Server,
                    null, "internal_error");
            if (e is InvalidOperationException)
                _logger.LogError(e, "Generation {Id} failed mid-stream.", reply.Id);
            ErrorResponses.Write(events.BeginEvent(), error.Message, error.Type, error.Param, error.Code);
            await events.EndEventAsync().ConfigureAwait(false);
            await events.DoneAsync().ConfigureAwait(false);
            return;
        }
        if (includeUsage)
        {
            shape.WriteUsageChunk(events.BeginEvent(), reply.Id, reply.Created, reply.Model,
                new GenerationUsage(reply.PromptTokens, clock.Tokens));
            await events.EndEventAsync().ConfigureAwait(false);
        }
        await events.DoneAsync().ConfigureAwait(false);
    }

    /// <summary>The engine ends streams with a cancellation the client did not ask for only when it is disposed.</summary>
    private ApiException EngineStopped()
    {
        const string why = "The engine was shut down while the request ran.";
        _state.MarkEngineUnavailable("The engine has been shut down.");
        return new ApiException(503, why, ApiErrorTypes.Unavailable, null, "engine_unavailable");
    }

    private sealed record Reply(ResponseShape Shape, string Id, long Created, string Model, int PromptTokens);

    /// <summary>Counts a request's tokens and records time to first token and the gaps between tokens.</summary>
    private sealed class TokenClock(ServerMetrics metrics, long arrived)
    {
        private long _last = arrived;

        public int Tokens { get; private set; }

        public void Tick()
        {
            long now = Stopwatch.GetTimestamp();
            double seconds = Stopwatch.GetElapsedTime(_last, now).TotalSeconds;
            if (Tokens == 0)
                metrics.TimeToFirstToken.Record(seconds);
            else
                metrics.InterTokenLatency.Record(seconds);
            _last = now;
            Tokens++;
        }
    }
}
