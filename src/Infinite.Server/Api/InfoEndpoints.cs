using System.Text.Json;
using Infinite.Server.Metrics;
using Microsoft.AspNetCore.Http;

namespace Infinite.Server.Api;

/// <summary>GET /v1/models, /v1/models/{id}, /health, /ready and /metrics.</summary>
internal sealed class InfoEndpoints(ServerState state, ServerMetrics metrics)
{
    public async Task ModelsAsync(HttpContext context)
    {
        await WriteJsonAsync(context, w =>
        {
            w.WriteStartObject();
            w.WriteString("object", "list");
            w.WriteStartArray("data");
            WriteModel(w);
            w.WriteEndArray();
            w.WriteEndObject();
        }).ConfigureAwait(false);
    }

    public async Task ModelAsync(HttpContext context)
    {
        string id = context.Request.RouteValues["id"] as string ?? "";
        if (!string.Equals(id, state.ModelId, StringComparison.Ordinal))
            throw new ApiException(404, $"The model '{id}' does not exist; this server serves '{state.ModelId}'.",
                ApiErrorTypes.InvalidRequest, "model", "model_not_found");
        await WriteJsonAsync(context, WriteModel).ConfigureAwait(false);
    }

    /// <summary>Liveness: the process answers.</summary>
    public Task HealthAsync(HttpContext context) => WriteStatusAsync(context, "ok");

    /// <summary>Readiness: the model is loaded (it always is once the server exists) and new requests are accepted.</summary>
    public Task ReadyAsync(HttpContext context)
        => state.NotAcceptingReason is string reason
            ? throw new ApiException(503, reason, ApiErrorTypes.Unavailable, null, "server_not_ready")
            : WriteStatusAsync(context, "ready");

    public async Task MetricsAsync(HttpContext context)
    {
        string text = metrics.Exporter.Scrape();
        context.Response.StatusCode = 200;
        context.Response.ContentType = PrometheusExporter.ContentType;
        await context.Response.WriteAsync(text, context.RequestAborted).ConfigureAwait(false);
    }

    private void WriteModel(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteString("id", state.ModelId);
        w.WriteString("object", "model");
        w.WriteNumber("created", state.Created);
        w.WriteString("owned_by", "infinite");
        w.WriteEndObject();
    }

    private Task WriteStatusAsync(HttpContext context, string status) => WriteJsonAsync(context, w =>
    {
        w.WriteStartObject();
        w.WriteString("status", status);
        w.WriteString("model", state.ModelId);
        w.WriteEndObject();
    });

    private static async Task WriteJsonAsync(HttpContext context, Action<Utf8JsonWriter> write)
    {
        context.Response.StatusCode = 200;
        context.Response.ContentType = "application/json";
        await using (var w = JsonOutput.CreateWriter(context.Response.BodyWriter))
            write(w);
        await context.Response.BodyWriter.FlushAsync(context.RequestAborted).ConfigureAwait(false);
    }
}
