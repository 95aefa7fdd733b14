using Infinite.Tokenization;

namespace Infinite.Engine;

/// <summary>Checks a request against the model and the KV cache before it is queued, so bad input fails with a
/// message instead of failing (or never finishing) inside the step loop.</summary>
internal static class RequestValidator
{
    /// <summary>Returns the prompt's token ids and the effective max tokens; throws <see cref="ArgumentException"/>.</summary>
    public static (int[] Prompt, int MaxTokens) Validate(GenerationRequest request, ITokenizer tokenizer,
        IModelExecutor executor, int maxContext = 0)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Sampling is null)
            throw new ArgumentException("Sampling options must not be null.", nameof(request));
        request.Sampling.Validate();
        if (request.Stop is not null && request.Stop.Any(string.IsNullOrEmpty))
            throw new ArgumentException("Stop strings must not be null or empty.", nameof(request));

        int[] prompt = (request.Prompt, request.PromptTokens) switch
        {
            (not null, not null) => throw new ArgumentException("Give either a prompt text or prompt tokens, not both.", nameof(request)),
            (null, null) => throw new ArgumentException("The prompt is empty.", nameof(request)),
            (string text, null) => text.Length == 0
                ? throw new ArgumentException("The prompt is empty.", nameof(request))
                : tokenizer.Encode(text),
            (null, IReadOnlyList<int> ids) => [.. ids],
        };
        if (prompt.Length == 0)
            throw new ArgumentException("The prompt is empty.", nameof(request));
        int vocab = executor.Config.VocabSize;
        for (int i = 0; i < prompt.Length; i++)
        {
            if ((uint)prompt[i] >= (uint)vocab)
                throw new ArgumentException($"Prompt token {i} has id {prompt[i]}, outside the vocabulary [0, {vocab}).", nameof(request));
        }

        int context = maxContext > 0 ? Math.Min(maxContext, executor.Config.ContextLength) : executor.Config.ContextLength;
        long cacheTokens = (long)executor.PageCount * executor.PageSize;
        if (request.MaxTokens is int max && max < 1)
            throw new ArgumentException($"max_tokens must be >= 1, got {max}.", nameof(request));
        long limit = Math.Min(context, cacheTokens);
        long total = prompt.Length + (long)(request.MaxTokens ?? 1);
        if (total > context)
            throw new ArgumentException(
                $"The prompt ({prompt.Length} tokens) plus max_tokens ({request.MaxTokens ?? 1}) is {total} tokens, beyond the model context of {context} tokens.",
                nameof(request));
        if (total > cacheTokens)
            throw new ArgumentException(
                $"The prompt ({prompt.Length} tokens) plus max_tokens ({request.MaxTokens ?? 1}) is {total} tokens, beyond the KV cache capacity of {cacheTokens} tokens ({executor.PageCount} pages of {executor.PageSize}).",
                nameof(request));
        int maxTokens = request.MaxTokens ?? (int)(limit - prompt.Length);
        return (prompt, maxTokens);
    }
}
