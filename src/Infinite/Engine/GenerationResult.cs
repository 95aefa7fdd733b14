namespace Infinite.Engine;

/// <summary>A finished, non-streamed generation.</summary>
public sealed record GenerationResult(string Text, IReadOnlyList<int> TokenIds, FinishReason FinishReason, GenerationUsage Usage);
