namespace Infinite.Engine;

/// <summary>Token counts of one request (OpenAI's <c>usage</c>).</summary>
public sealed record GenerationUsage(int PromptTokens, int CompletionTokens)
{
    public int TotalTokens => PromptTokens + CompletionTokens;
}
