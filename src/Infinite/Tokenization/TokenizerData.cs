namespace Infinite.Tokenization;

/// <summary>The tokenizer algorithm a model file names.</summary>
public enum TokenizerKind
{
    /// <summary>SentencePiece-style (GGUF <c>llama</c>): piece scores, ▁ for spaces, byte fallback &lt;0xNN&gt;.</summary>
    SentencePiece,
    /// <summary>Byte-level BPE (GGUF <c>gpt2</c>, Hugging Face <c>tokenizer.json</c> with a BPE model): ranked merges.</summary>
    ByteLevelBpe,
}

/// <summary>GGUF token types (<c>tokenizer.ggml.token_type</c>).</summary>
public enum TokenType
{
    Undefined = 0,
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6,
}

/// <summary>
/// Everything a tokenizer and a chat template need, read from a model's files (GGUF metadata or
/// <c>tokenizer.json</c> + <c>tokenizer_config.json</c>). <see cref="Merges"/> are "left right" pairs, best
/// first (BPE only); <see cref="Scores"/> are per-token (SentencePiece only). <see cref="Pre"/> is the
/// pre-tokenizer name (GGUF <c>tokenizer.ggml.pre</c>: "llama-bpe", "default", ...), null when unknown;
/// "regex:&lt;pattern&gt;" names the split pattern itself. <see cref="IgnoreMerges"/>: a pre-token that is already a
/// vocabulary entry is emitted whole (Hugging Face <c>ignore_merges</c>; always on for the Llama 3 pre-tokenizer).
/// </summary>
public sealed record TokenizerData(
    TokenizerKind Kind,
    IReadOnlyList<string> Tokens,
    IReadOnlyList<float>? Scores,
    IReadOnlyList<TokenType>? Types,
    IReadOnlyList<string>? Merges,
    int BosId,
    int EosId,
    int? UnknownId,
    int? PadId,
    bool AddBos,
    bool AddEos,
    string? Pre,
    string? ChatTemplate,
    IReadOnlyList<int>? ExtraEosIds = null,
    bool IgnoreMerges = false);
