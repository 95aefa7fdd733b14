using System.Text.Json;
using Infinite.Engine;

namespace Infinite.Server.Api;

/// <summary>What /v1/completions and /v1/chat/completions share: the model, sampling, limits, stop and streaming.
/// Fields that would change the response's meaning and that the server cannot honour are refused, not ignored.</summary>
internal sealed record GenerationParameters(
    SamplingOptions Sampling,
    int? MaxTokens,
    IReadOnlyList<string>? Stop,
    bool IgnoreEos,
    bool Stream,
    bool IncludeUsage)
{
    /// <summary>OpenAI accepts at most four stop sequences.</summary>
    public const int MaxStopSequences = 4;

    public static GenerationParameters Parse(JsonFields f, string servedModel, bool chat)
    {
        string model = f.RequiredString("model");
        if (!string.Equals(model, servedModel, StringComparison.Ordinal))
            throw new ApiException(404, $"The model '{model}' does not exist; this server serves '{servedModel}'.",
                ApiErrorTypes.InvalidRequest, "model", "model_not_found");

        int? n = f.Int("n");
        if (n is not null and not 1)
            throw ApiException.BadRequest($"Invalid value for 'n': only n = 1 is supported, got {n}.", "n", "invalid_value");
        RefuseUnsupported(f, chat);

        int? maxTokens = chat ? f.Int("max_completion_tokens") ?? f.Int("max_tokens") : f.Int("max_tokens");
        string maxName = chat && f.TryGet("max_completion_tokens", out _) ? "max_completion_tokens" : "max_tokens";
        if (maxTokens is < 1)
            throw ApiException.BadRequest($"Invalid value for '{maxName}': expected an integer >= 1, got {maxTokens}.",
                maxName, "invalid_value");

        var defaults = new SamplingOptions();
        var sampling = new SamplingOptions
        {
            Temperature = f.Float("temperature") ?? defaults.Temperature,
            TopP = f.Float("top_p") ?? defaults.TopP,
            TopK = f.Int("top_k") ?? defaults.TopK,
            MinP = f.Float("min_p") ?? defaults.MinP,
            PresencePenalty = f.Float("presence_penalty") ?? defaults.PresencePenalty,
            FrequencyPenalty = f.Float("frequency_penalty") ?? defaults.FrequencyPenalty,
            RepetitionPenalty = f.Float("repetition_penalty") ?? defaults.RepetitionPenalty,
            Seed = FoldSeed(f.Long("seed")),
        };
        ValidateSampling(sampling);

        bool stream = f.Bool("stream") ?? false;
        bool includeUsage = f.Object("stream_options")?.Bool("include_usage") ?? false;
        return new GenerationParameters(sampling, maxTokens, ReadStop(f), f.Bool("ignore_eos") ?? false, stream,
            includeUsage);
    }

    /// <summary>OpenAI seeds are 64-bit; the sampler takes 32. Folding keeps distinct small seeds distinct and the
    /// mapping deterministic.</summary>
    private static int? FoldSeed(long? seed) => seed is long s ? (int)(s ^ (s >> 32)) : null;

    private static void ValidateSampling(SamplingOptions s)
    {
        // The engine's own check names the field too, but without "param"; these ranges are OpenAI's.
        if (s.Temperature is < 0f or > 2f)
            throw Range("temperature", "in [0, 2]", s.Temperature);
        if (s.TopP is <= 0f or > 1f)
            throw Range("top_p", "in (0, 1]", s.TopP);
        if (s.TopK < 0)
            throw Range("top_k", ">= 0 (0 = off)", s.TopK);
        if (s.MinP is < 0f or > 1f)
            throw Range("min_p", "in [0, 1]", s.MinP);
        if (s.PresencePenalty is < -2f or > 2f)
            throw Range("presence_penalty", "in [-2, 2]", s.PresencePenalty);
        if (s.FrequencyPenalty is < -2f or > 2f)
            throw Range("frequency_penalty", "in [-2, 2]", s.FrequencyPenalty);
        if (s.RepetitionPenalty <= 0f)
            throw Range("repetition_penalty", "> 0", s.RepetitionPenalty);
    }

    private static ApiException Range(string name, string range, float got)
        => ApiException.BadRequest($"Invalid value for '{name}': expected a number {range}, got {got}.", name, "invalid_value");

    private static List<string>? ReadStop(JsonFields f)
    {
        if (!f.TryGet("stop", out JsonElement stop))
            return null;
        var list = new List<string>();
        if (stop.ValueKind == JsonValueKind.String)
            list.Add(stop.GetString()!);
        else if (stop.ValueKind == JsonValueKind.Array)
        {
            foreach (JsonElement item in stop.EnumerateArray())
            {
                if (item.ValueKind != JsonValueKind.String)
                    throw ApiException.InvalidType($"stop[{list.Count}]", "a string", JsonFields.Describe(item));
                list.Add(item.GetString()!);
            }
        }
        else
            throw f.WrongType("stop", "a string or an array of strings", stop);
        if (list.Count > MaxStopSequences)
            throw ApiException.BadRequest($"Invalid value for 'stop': at most {MaxStopSequences} sequences, got {list.Count}.",
                "stop", "invalid_value");
        if (list.Any(s => s.Length == 0))
            throw ApiException.BadRequest("Invalid value for 'stop': stop sequences must not be empty.", "stop", "invalid_value");
        return list.Count == 0 ? null : list;
    }

    private static void RefuseUnsupported(JsonFields f, bool chat)
    {
        if (chat)
        {
            if (f.Bool("logprobs") == true)
                throw ApiException.Unsupported("logprobs", "(token log probabilities)");
            if (f.TryGet("top_logprobs", out _))
                throw ApiException.Unsupported("top_logprobs", "(token log probabilities)");
            foreach (string name in (string[])["tools", "tool_choice", "functions", "function_call"])
            {
                if (f.TryGet(name, out _))
                    throw ApiException.Unsupported(name, "(tool and function calling)");
            }
            if (f.Object("response_format")?.String("type") is string format && format != "text")
                throw ApiException.Unsupported("response_format", $"of type '{format}'");
        }
        else
        {
            if (f.TryGet("logprobs", out _))
                throw ApiException.Unsupported("logprobs", "(token log probabilities)");
            if (f.Bool("echo") == true)
                throw ApiException.Unsupported("echo", "= true");
            if (f.Int("best_of") is int bestOf && bestOf != 1)
                throw ApiException.Unsupported("best_of", $"= {bestOf}");
            if (f.String("suffix") is { Length: > 0 })
                throw ApiException.Unsupported("suffix", "(insertion)");
        }
        if (f.TryGet("logit_bias", out JsonElement bias))
        {
            if (bias.ValueKind != JsonValueKind.Object)
                throw f.WrongType("logit_bias", "an object", bias);
            if (bias.EnumerateObject().Any())
                throw ApiException.Unsupported("logit_bias", "(per-token biases)");
        }
    }
}
