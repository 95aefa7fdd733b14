namespace Infinite.Engine;

/// <summary>
/// One sampled token as streamed to the consumer. <paramref name="Text"/> is the text this token completes: it may be
/// empty (a partial UTF-8 character, or text held back because it may begin a stop string) or carry text of earlier
/// tokens released now. <paramref name="FinishReason"/> is set on the last token only.
/// </summary>
public sealed record GeneratedToken(int TokenId, string Text, FinishReason? FinishReason = null);
