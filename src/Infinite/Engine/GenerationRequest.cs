namespace Infinite.Engine;

/// <summary>One generation: a prompt (text or token ids, exactly one), limits, stop conditions and sampling.</summary>
public sealed record GenerationRequest
{
    /// <summary>Prompt text, encoded with BOS and special tokens parsed.</summary>
    public string? Prompt { get; init; }
    /// <summary>Prompt token ids, used as given.</summary>
    public IReadOnlyList<int>? PromptTokens { get; init; }
    /// <summary>Tokens to generate at most; null = as many as the context and the KV cache allow.</summary>
    public int? MaxTokens { get; init; }
    /// <summary>Strings that end generation; the output never contains them.</summary>
    public IReadOnlyList<string>? Stop { get; init; }
    /// <summary>Keep generating past EOS tokens.</summary>
    public bool IgnoreEos { get; init; }
    public SamplingOptions Sampling { get; init; } = new();
}
