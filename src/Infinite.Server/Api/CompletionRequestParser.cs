using System.Text.Json;
using Infinite.Engine;

namespace Infinite.Server.Api;

/// <summary>Reads a /v1/completions body: "prompt" is a string, an array of one string, or an array of token ids.</summary>
internal static class CompletionRequestParser
{
    /// <summary>OpenAI's default max_tokens for legacy completions.</summary>
    public const int DefaultMaxTokens = 16;

    public static PreparedGeneration Parse(JsonElement body, InfiniteEngine engine, string servedModel)
    {
        var f = new JsonFields(body);
        GenerationParameters p = GenerationParameters.Parse(f, servedModel, chat: false);
        int[] prompt = ReadPrompt(f, engine);
        var request = new GenerationRequest
        {
            PromptTokens = prompt,
            MaxTokens = p.MaxTokens ?? DefaultMaxTokens,
            Stop = p.Stop,
            IgnoreEos = p.IgnoreEos,
            Sampling = p.Sampling,
        };
        return new PreparedGeneration(request, prompt.Length, p);
    }

    private static int[] ReadPrompt(JsonFields f, InfiniteEngine engine)
    {
        if (!f.TryGet("prompt", out JsonElement prompt))
            throw ApiException.BadRequest("Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter");
        switch (prompt.ValueKind)
        {
            case JsonValueKind.String:
                return Encode(prompt.GetString()!, engine);
            case JsonValueKind.Array:
                int count = prompt.GetArrayLength();
                if (count == 0)
                    throw ApiException.BadRequest("Invalid value for 'prompt': the prompt is empty.", "prompt", "invalid_value");
                JsonElement first = prompt[0];
                if (first.ValueKind == JsonValueKind.String)
                {
                    if (count != 1)
                        throw ApiException.BadRequest(
                            $"Invalid value for 'prompt': only one prompt per request is supported, got {count}.", "prompt",
                            "invalid_value");
                    return Encode(first.GetString()!, engine);
                }
                if (first.ValueKind == JsonValueKind.Number)
                    return ReadTokenIds(prompt, engine.Config.VocabSize);
                throw ApiException.InvalidType("prompt[0]", "a string or a token id", JsonFields.Describe(first));
            default:
                throw f.WrongType("prompt", "a string, an array of one string or an array of token ids", prompt);
        }
    }

    private static int[] Encode(string text, InfiniteEngine engine)
    {
        if (text.Length == 0)
            throw ApiException.BadRequest("Invalid value for 'prompt': the prompt is empty.", "prompt", "invalid_value");
        // The same encoding the engine applies to a text prompt: BOS where the model wants it, specials parsed.
        return engine.Tokenizer.Encode(text);
    }

    private static int[] ReadTokenIds(JsonElement array, int vocab)
    {
        var ids = new int[array.GetArrayLength()];
        int i = 0;
        foreach (JsonElement item in array.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt32(out int id))
                throw ApiException.InvalidType($"prompt[{i}]", "a token id (integer)", JsonFields.Describe(item));
            if ((uint)id >= (uint)vocab)
                throw ApiException.BadRequest($"Invalid value for 'prompt[{i}]': token id {id} is outside the vocabulary [0, {vocab}).",
                    $"prompt[{i}]", "invalid_value");
            ids[i++] = id;
        }
        return ids;
    }
}
