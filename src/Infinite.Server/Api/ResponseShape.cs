using System.Text.Json;
using Infinite.Engine;

namespace Infinite.Server.Api;

/// <summary>The JSON shapes of one endpoint's responses and stream chunks; the envelope (id, object, created,
/// model, choices, usage) is common, the choice differs.</summary>
internal abstract class ResponseShape
{
    public abstract string IdPrefix { get; }
    public abstract string CompletionObject { get; }
    public abstract string ChunkObject { get; }

    /// <summary>Chat streams open with a chunk that carries only the role.</summary>
    public abstract bool HasRoleChunk { get; }

    /// <summary>One choice of a stream chunk; <paramref name="text"/> null = the role chunk (chat) or a chunk that
    /// only carries the finish reason.</summary>
    protected abstract void WriteDeltaChoice(Utf8JsonWriter w, string? text, bool roleChunk);

    protected abstract void WriteFullChoice(Utf8JsonWriter w, string text);

    public static string FinishReasonText(FinishReason reason) => reason == FinishReason.Stop ? "stop" : "length";

    public void WriteCompletion(Utf8JsonWriter w, string id, long created, string model, string text, FinishReason reason,
        GenerationUsage usage)
    {
        WriteEnvelope(w, id, CompletionObject, created, model);
        w.WriteStartArray("choices");
        w.WriteStartObject();
        w.WriteNumber("index", 0);
        WriteFullChoice(w, text);
        w.WriteNull("logprobs");
        w.WriteString("finish_reason", FinishReasonText(reason));
        w.WriteEndObject();
        w.WriteEndArray();
        WriteUsage(w, usage);
        w.WriteEndObject();
    }

    /// <summary>A chunk with one choice. With include_usage every such chunk has "usage": null, as OpenAI sends.</summary>
    public void WriteChunk(Utf8JsonWriter w, string id, long created, string model, string? text, FinishReason? reason,
        bool includeUsage, bool roleChunk = false)
    {
        WriteEnvelope(w, id, ChunkObject, created, model);
        w.WriteStartArray("choices");
        w.WriteStartObject();
        w.WriteNumber("index", 0);
        WriteDeltaChoice(w, text, roleChunk);
        w.WriteNull("logprobs");
        if (reason is FinishReason r)
            w.WriteString("finish_reason", FinishReasonText(r));
        else
            w.WriteNull("finish_reason");
        w.WriteEndObject();
        w.WriteEndArray();
        if (includeUsage)
            w.WriteNull("usage");
        w.WriteEndObject();
    }

    /// <summary>The last chunk when stream_options.include_usage: no choices, the request's usage.</summary>
    public void WriteUsageChunk(Utf8JsonWriter w, string id, long created, string model, GenerationUsage usage)
    {
        WriteEnvelope(w, id, ChunkObject, created, model);
        w.WriteStartArray("choices");
        w.WriteEndArray();
        WriteUsage(w, usage);
        w.WriteEndObject();
    }

    private static void WriteEnvelope(Utf8JsonWriter w, string id, string obj, long created, string model)
    {
        w.WriteStartObject();
        w.WriteString("id", id);
        w.WriteString("object", obj);
        w.WriteNumber("created", created);
        w.WriteString("model", model);
        w.WriteNull("system_fingerprint");
    }

    private static void WriteUsage(Utf8JsonWriter w, GenerationUsage usage)
    {
        w.WriteStartObject("usage");
        w.WriteNumber("prompt_tokens", usage.PromptTokens);
        w.WriteNumber("completion_tokens", usage.CompletionTokens);
        w.WriteNumber("total_tokens", usage.TotalTokens);
        w.WriteEndObject();
    }
}

/// <summary>/v1/completions: choices carry "text".</summary>
internal sealed class CompletionShape : ResponseShape
{
    public static CompletionShape Instance { get; } = new();

    public override string IdPrefix => "cmpl-";
    public override string CompletionObject => "text_completion";
    public override string ChunkObject => "text_completion";
    public override bool HasRoleChunk => false;

    protected override void WriteDeltaChoice(Utf8JsonWriter w, string? text, bool roleChunk)
        => w.WriteString("text", text ?? "");

    protected override void WriteFullChoice(Utf8JsonWriter w, string text) => w.WriteString("text", text);
}

/// <summary>/v1/chat/completions: choices carry "message", chunks "delta".</summary>
internal sealed class ChatShape : ResponseShape
{
    public static ChatShape Instance { get; } = new();

    public override string IdPrefix => "chatcmpl-";
    public override string CompletionObject => "chat.completion";
    public override string ChunkObject => "chat.completion.chunk";
    public override bool HasRoleChunk => true;

    protected override void WriteDeltaChoice(Utf8JsonWriter w, string? text, bool roleChunk)
    {
        w.WriteStartObject("delta");
        if (roleChunk)
        {
            w.WriteString("role", "assistant");
            w.WriteString("content", "");
        }
        else if (text is not null)
            w.WriteString("content", text);
        w.WriteEndObject();
    }

    protected override void WriteFullChoice(Utf8JsonWriter w, string text)
    {
        w.WriteStartObject("message");
        w.WriteString("role", "assistant");
        w.WriteString("content", text);
        w.WriteNull("refusal");
        w.WriteEndObject();
    }
}
