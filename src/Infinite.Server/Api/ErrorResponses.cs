using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace Infinite.Server.Api;

/// <summary>Writes OpenAI's error body <c>{"error": {"message", "type", "param", "code"}}</c>.</summary>
internal static class ErrorResponses
{
    public static void Write(Utf8JsonWriter w, string message, string type, string? param, string? code)
    {
        w.WriteStartObject();
        w.WriteStartObject("error");
        w.WriteString("message", message);
        w.WriteString("type", type);
        WriteNullable(w, "param", param);
        WriteNullable(w, "code", code);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    public static Task WriteAsync(HttpContext context, ApiException error)
        => WriteAsync(context, error.Status, error.Message, error.Type, error.Param, error.Code);

    public static async Task WriteAsync(HttpContext context, int status, string message, string type,
        string? param = null, string? code = null)
    {
        HttpResponse response = context.Response;
        response.StatusCode = status;
        response.ContentType = "application/json";
        await using (var w = JsonOutput.CreateWriter(response.BodyWriter))
            Write(w, message, type, param, code);
        await response.BodyWriter.FlushAsync(context.RequestAborted).ConfigureAwait(false);
    }

    private static void WriteNullable(Utf8JsonWriter w, string name, string? value)
    {
        if (value is null)
            w.WriteNull(name);
        else
            w.WriteString(name, value);
    }
}
