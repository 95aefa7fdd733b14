namespace Infinite.Tokenization;

/// <summary>One turn of a conversation: role "system", "user" or "assistant".</summary>
public sealed record ChatMessage(string Role, string Content);
