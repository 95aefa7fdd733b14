using System.Diagnostics;
using Infinite.Server.Metrics;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Infinite.Server.Api;

/// <summary>The outermost middleware: turns every failure into OpenAI's error body with the right status, gives
/// unknown routes and wrong methods the same body, and counts each request by endpoint and status.</summary>
internal sealed class RequestPipeline(ServerMetrics metrics, ILogger logger)
{
    /// <summary>Status recorded for requests whose client went away before the answer (nginx's convention).</summary>
    public const int ClientClosedRequest = 499;

    private static readonly HashSet<string> KnownEndpoints = new(StringComparer.Ordinal)
    {
        "/v1/completions", "/v1/chat/completions", "/v1/models", "/health", "/ready", "/metrics",
    };

    public async Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        long start = Stopwatch.GetTimestamp();
        try
        {
            await next(context).ConfigureAwait(false);
            if (context.Response.StatusCode is 404 or 405 && !context.Response.HasStarted)
                await WriteRoutingErrorAsync(context).ConfigureAwait(false);
        }
        catch (Exception e) when (context.RequestAborted.IsCancellationRequested || e is ClientDisconnectedException)
        {
            // The client left; nobody reads an answer. Its generation was cancelled with the request.
            context.Response.StatusCode = ClientClosedRequest;
        }
        catch (Exception e) when (!context.Response.HasStarted)
        {
            await WriteErrorAsync(context, e).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            logger.LogError(e, "{Method} {Path} failed after the response started.", context.Request.Method,
                context.Request.Path);
            context.Abort();
        }
        finally
        {
            int status = context.RequestAborted.IsCancellationRequested ? ClientClosedRequest : context.Response.StatusCode;
            metrics.RecordRequest(EndpointLabel(context.Request.Path), status,
                Stopwatch.GetElapsedTime(start).TotalSeconds);
        }
    }

    /// <summary>Known paths by name, anything else as "other", so random URLs cannot blow up the label set.</summary>
    private static string EndpointLabel(PathString path)
    {
        string value = path.Value ?? "";
        if (KnownEndpoints.Contains(value))
            return value;
        return value.StartsWith("/v1/models/", StringComparison.Ordinal) ? "/v1/models/{id}" : "other";
    }

    private Task WriteErrorAsync(HttpContext context, Exception e)
    {
        context.Response.Clear();
        switch (e)
        {
            case ApiException api:
                return ErrorResponses.WriteAsync(context, api);
            case BadHttpRequestException bad:
                // Kestrel's own refusals (body over the limit, malformed framing).
                return ErrorResponses.WriteAsync(context, bad.StatusCode, bad.Message, ApiErrorTypes.InvalidRequest,
                    null, bad.StatusCode == 413 ? "request_too_large" : null);
            default:
                logger.LogError(e, "{Method} {Path} failed.", context.Request.Method, context.Request.Path);
                return ErrorResponses.WriteAsync(context, 500, "The server had an error while processing your request.",
                    ApiErrorTypes.Server, null, "internal_error");
        }
    }

    private static Task WriteRoutingErrorAsync(HttpContext context)
    {
        bool notFound = context.Response.StatusCode == 404;
        string message = notFound
            ? $"Unknown request URL: {context.Request.Method} {context.Request.Path}."
            : $"Method {context.Request.Method} is not allowed on {context.Request.Path}.";
        return ErrorResponses.WriteAsync(context, context.Response.StatusCode, message, ApiErrorTypes.InvalidRequest, null,
            notFound ? "unknown_url" : "method_not_allowed");
    }
}
