namespace Infinite.Engine;

/// <summary>Why a generation ended.</summary>
public enum FinishReason
{
    /// <summary>The request's MaxTokens were generated.</summary>
    Length = 0,
    /// <summary>An EOS token or a stop string ended it.</summary>
    Stop = 1,
}
