using System.Text;
using System.Text.Json;
using Infinite.Tokenization;

namespace Infinite.Server.Api;

/// <summary>Reads a /v1/chat/completions body: "messages" with roles system (or developer), user and assistant,
/// content as a string or as parts of type "text".</summary>
internal static class ChatRequestParser
{
    public static PreparedGeneration Parse(JsonElement body, InfiniteEngine engine, string servedModel)
    {
        var f = new JsonFields(body);
        GenerationParameters p = GenerationParameters.Parse(f, servedModel, chat: true);
        List<ChatMessage> messages = ReadMessages(f);
        Engine.GenerationRequest request;
        try
        {
            request = engine.ChatRequest(messages, p.MaxTokens, p.Sampling, p.Stop) with { IgnoreEos = p.IgnoreEos };
        }
        catch (ArgumentException e)
        {
            // The template's own checks (order of roles, system first) name the message.
            throw ApiException.FromArgument(e, "messages");
        }
        return new PreparedGeneration(request, request.PromptTokens!.Count, p);
    }

    private static List<ChatMessage> ReadMessages(JsonFields f)
    {
        if (!f.TryGet("messages", out JsonElement array))
            throw ApiException.BadRequest("Missing required parameter: 'messages'.", "messages", "missing_required_parameter");
        if (array.ValueKind != JsonValueKind.Array)
            throw f.WrongType("messages", "an array", array);
        if (array.GetArrayLength() == 0)
            throw ApiException.BadRequest("Invalid value for 'messages': at least one message is required.", "messages",
                "invalid_value");
        var messages = new List<ChatMessage>();
        foreach (JsonElement item in array.EnumerateArray())
        {
            string path = $"messages[{messages.Count}]";
            if (item.ValueKind != JsonValueKind.Object)
                throw ApiException.InvalidType(path, "an object", JsonFields.Describe(item));
            var m = new JsonFields(item, path + ".");
            string role = m.RequiredString("role") switch
            {
                "system" or "developer" => "system",
                "user" => "user",
                "assistant" => "assistant",
                string other => throw ApiException.BadRequest(
                    $"Invalid value for '{path}.role': '{other}' is not supported; use system, developer, user or assistant.",
                    path + ".role", "invalid_value"),
            };
            if (m.TryGet("tool_calls", out _) || m.TryGet("function_call", out _))
                throw ApiException.Unsupported(path + ".tool_calls", "(tool and function calling)");
            messages.Add(new ChatMessage(role, ReadContent(m, path)));
        }
        return messages;
    }

    private static string ReadContent(JsonFields m, string path)
    {
        if (!m.TryGet("content", out JsonElement content))
            throw ApiException.BadRequest($"Missing required parameter: '{path}.content'.", path + ".content",
                "missing_required_parameter");
        if (content.ValueKind == JsonValueKind.String)
            return content.GetString()!;
        if (content.ValueKind != JsonValueKind.Array)
            throw m.WrongType("content", "a string or an array of content parts", content);
        var text = new StringBuilder();
        int i = 0;
        foreach (JsonElement part in content.EnumerateArray())
        {
            string partPath = $"{path}.content[{i++}]";
            if (part.ValueKind != JsonValueKind.Object)
                throw ApiException.InvalidType(partPath, "an object", JsonFields.Describe(part));
            var pf = new JsonFields(part, partPath + ".");
            string type = pf.RequiredString("type");
            if (type != "text")
                throw ApiException.BadRequest($"Invalid value for '{partPath}.type': '{type}' parts are not supported, only 'text'.",
                    partPath + ".type", "unsupported_parameter");
            text.Append(pf.RequiredString("text"));
        }
        return text.ToString();
    }
}
