using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Infinite.Server.Api;

/// <summary>One writer setup for every response. Relaxed escaping: the bodies are JSON for API clients, never
/// embedded in HTML, so generated text goes out as UTF-8 instead of \uXXXX escapes (a third of the bytes).</summary>
internal static class JsonOutput
{
    private static readonly JsonWriterOptions Options = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static Utf8JsonWriter CreateWriter(IBufferWriter<byte> output) => new(output, Options);
}
