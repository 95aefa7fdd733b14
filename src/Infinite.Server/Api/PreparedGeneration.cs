using Infinite.Engine;

namespace Infinite.Server.Api;

/// <summary>A parsed request ready for the engine. The prompt is tokenized here so usage can report its length
/// while streaming.</summary>
internal sealed record PreparedGeneration(GenerationRequest Request, int PromptTokens, GenerationParameters Parameters);
