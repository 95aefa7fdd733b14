namespace Infinite.Engine;

/// <summary>Tokens <c>Start .. Start+Count-1</c> of a sequence fed in one step; <see cref="LogitRow"/> is its row in
/// the step's logits, or -1.</summary>
internal readonly record struct ScheduledChunk(Sequence Sequence, int Start, int Count, bool IsDecode, int LogitRow);
