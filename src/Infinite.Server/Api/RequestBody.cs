using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace Infinite.Server.Api;

/// <summary>Reads a request body as one JSON object, within the size limit.</summary>
internal static class RequestBody
{
    private static readonly JsonDocumentOptions ParseOptions = new() { MaxDepth = 64 };

    public static async Task<JsonDocument> ReadObjectAsync(HttpContext context, long maxBytes)
    {
        if (context.Request.ContentLength is long length && length > maxBytes)
            throw TooLarge(maxBytes);
        JsonDocument document;
        try
        {
            document = await JsonDocument.ParseAsync(context.Request.Body, ParseOptions, context.RequestAborted)
                .ConfigureAwait(false);
        }
        catch (JsonException e)
        {
            throw ApiException.BadRequest(
                $"We could not parse the JSON body of your request: {e.Message} The body must be valid JSON.");
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            // Chunked bodies have no Content-Length; Kestrel stops them at its limit.
            throw TooLarge(maxBytes);
        }
        if (document.RootElement.ValueKind != JsonValueKind.Object)
        {
            string got = JsonFields.Describe(document.RootElement);
            document.Dispose();
            throw ApiException.BadRequest($"The request body must be a JSON object, got {got}.");
        }
        return document;
    }

    private static ApiException TooLarge(long maxBytes)
        => new(StatusCodes.Status413PayloadTooLarge, $"The request body is larger than the limit of {maxBytes} bytes.",
            ApiErrorTypes.InvalidRequest, null, "request_too_large");
}
