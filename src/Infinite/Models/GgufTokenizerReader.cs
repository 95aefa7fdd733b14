using Infinite.Tokenization;

namespace Infinite.Models;

/// <summary>Reads the <c>tokenizer.ggml.*</c> metadata of a GGUF file into <see cref="TokenizerData"/>.</summary>
internal static class GgufTokenizerReader
{
    /// <summary>Tokens that end a turn or a text in the common chat formats; marked as extra EOS when Control.</summary>
    private static readonly string[] EndTokens = ["<|eot_id|>", "<|im_end|>", "<|end_of_text|>", "</s>"];

    public static TokenizerData Read(GgufMetadata m)
    {
        string model = m.String("tokenizer.ggml.model");
        var kind = model switch
        {
            "llama" => TokenizerKind.SentencePiece,
            "gpt2" => TokenizerKind.ByteLevelBpe,
            _ => throw m.Error($"tokenizer.ggml.model '{model}' is not supported (llama and gpt2 are)"),
        };
        string[] tokens = m.OptionalArray<string>("tokenizer.ggml.tokens", "an array of strings")
            ?? throw m.Error("metadata key 'tokenizer.ggml.tokens' is missing");
        if (tokens.Length == 0) throw m.Error("tokenizer.ggml.tokens is empty");
        float[]? scores = m.OptionalArray<float>("tokenizer.ggml.scores", "an array of float32");
        int[]? types = m.OptionalArray<int>("tokenizer.ggml.token_type", "an array of int32");
        string[]? merges = m.OptionalArray<string>("tokenizer.ggml.merges", "an array of strings");
        if (scores is not null && scores.Length != tokens.Length)
            throw m.Error($"tokenizer.ggml.scores has {scores.Length} entries for {tokens.Length} tokens");
        if (types is not null && types.Length != tokens.Length)
            throw m.Error($"tokenizer.ggml.token_type has {types.Length} entries for {tokens.Length} tokens");
        if (types is not null && types.FirstOrDefault(t => t is < 0 or > (int)TokenType.Byte, -1) is var bad && bad != -1)
            throw m.Error($"tokenizer.ggml.token_type holds {bad}, not a token type (0 to 6)");
        if (kind == TokenizerKind.ByteLevelBpe && merges is null)
            throw m.Error("metadata key 'tokenizer.ggml.merges' is missing (a gpt2 tokenizer needs merges)");

        int? Id(string key)
        {
            long? v = m.OptionalInteger(key);
            if (v is null) return null;
            return v >= 0 && v < tokens.Length ? (int)v : throw m.Error($"{key} is {v}, outside the {tokens.Length} tokens");
        }
        int bos = Id("tokenizer.ggml.bos_token_id") ?? throw m.Error("metadata key 'tokenizer.ggml.bos_token_id' is missing");
        int eos = Id("tokenizer.ggml.eos_token_id") ?? throw m.Error("metadata key 'tokenizer.ggml.eos_token_id' is missing");
        var extraEos = new List<int>();
        if (types is not null)
            for (int i = 0; i < tokens.Length; i++)
                if (i != eos && types[i] == (int)TokenType.Control && EndTokens.Contains(tokens[i])) extraEos.Add(i);
        return new TokenizerData(
            kind, tokens, scores, types?.Select(t => (TokenType)t).ToArray(), merges,
            bos, eos, Id("tokenizer.ggml.unknown_token_id"), Id("tokenizer.ggml.padding_token_id"),
            m.OptionalBool("tokenizer.ggml.add_bos_token") ?? kind == TokenizerKind.SentencePiece,
            m.OptionalBool("tokenizer.ggml.add_eos_token") ?? false,
            m.OptionalString("tokenizer.ggml.pre"),
            m.OptionalString("tokenizer.chat_template"),
            extraEos);
    }
}
