using Infinite.Models;
using Infinite.Tokenization;

namespace Infinite.Tests.Models;

public sealed class GgufTokenizerTests : IDisposable
{
    private readonly ModelTestFiles _files = new();

    public void Dispose() => _files.Dispose();

    /// <summary>Copies a synthetic GGUF's metadata and tensors through <see cref="GgufWriter"/>, replacing the
    /// tokenizer keys with <paramref name="tokenizer"/>.</summary>
    private string Rewrite(Dictionary<string, object> tokenizer)
    {
        string source = _files.WriteGguf(ModelTestFiles.Small, seed: 12, TensorType.BF16, "source.gguf");
        var file = GgufFile.Read(source);
        byte[] bytes = File.ReadAllBytes(source);
        var w = new GgufWriter();
        foreach (var (k, v) in file.Metadata)
            if (!k.StartsWith("tokenizer.", StringComparison.Ordinal)) w.Add(k, v);
        foreach (var (k, v) in tokenizer) w.Add(k, v);
        foreach (var t in file.Tensors) w.AddTensor(t.Name, t.Type, t.Shape, s => s.Write(bytes, (int)t.Offset, (int)t.Bytes));
        string path = _files.PathOf("rewritten.gguf");
        w.Write(path);
        return path;
    }

    private static Dictionary<string, object> SentencePiece(int vocab)
    {
        var rng = new Random(4);
        var tokens = new List<string> { "<unk>", "<s>", "</s>" };
        var types = new List<int> { 2, 3, 3 };
        for (int b = 0; b < 256; b++) { tokens.Add($"<0x{b:X2}>"); types.Add(6); }
        while (tokens.Count < vocab) { tokens.Add($"▁w{tokens.Count}"); types.Add(1); }
        return new()
        {
            ["tokenizer.ggml.model"] = "llama",
            ["tokenizer.ggml.tokens"] = tokens.ToArray(),
            ["tokenizer.ggml.scores"] = tokens.Select(_ => (float)-rng.NextDouble() * 10).ToArray(),
            ["tokenizer.ggml.token_type"] = types.ToArray(),
            ["tokenizer.ggml.bos_token_id"] = 1u,
            ["tokenizer.ggml.eos_token_id"] = 2u,
            ["tokenizer.ggml.unknown_token_id"] = 0u,
            ["tokenizer.ggml.padding_token_id"] = 0u,
        };
    }

    [Fact]
    public void SentencePiece_tokenizer_reads_scores_types_ids_and_defaults()
    {
        var meta = SentencePiece(ModelTestFiles.Small.VocabSize);
        using var m = ModelFile.Open(Rewrite(meta));
        Assert.Equal(ModelTestFiles.Small, m.Config);
        var tok = m.Tokenizer;
        Assert.Equal(TokenizerKind.SentencePiece, tok.Kind);
        Assert.Equal((string[])meta["tokenizer.ggml.tokens"], tok.Tokens);
        Assert.Equal((float[])meta["tokenizer.ggml.scores"], tok.Scores);
        Assert.Equal(TokenType.Byte, tok.Types![3]);
        Assert.Equal((1, 2, 0, 0), (tok.BosId, tok.EosId, tok.UnknownId, tok.PadId));
        Assert.True(tok.AddBos);    // llama's default
        Assert.False(tok.AddEos);
        Assert.Empty(tok.ExtraEosIds!);   // </s> is the EOS itself
        Assert.Null(tok.Merges);
        Assert.Null(tok.ChatTemplate);
    }

    [Fact]
    public void Tokenizer_inconsistencies_are_named()
    {
        var meta = SentencePiece(ModelTestFiles.Small.VocabSize);
        meta["tokenizer.ggml.scores"] = new float[5];
        Assert.Contains("tokenizer.ggml.scores has 5 entries for 300 tokens", Assert.Throws<ModelFormatException>(() => ModelFile.Open(Rewrite(meta))).Message);

        meta = SentencePiece(ModelTestFiles.Small.VocabSize);
        meta["tokenizer.ggml.eos_token_id"] = 300u;
        Assert.Contains("tokenizer.ggml.eos_token_id is 300, outside the 300 tokens", Assert.Throws<ModelFormatException>(() => ModelFile.Open(Rewrite(meta))).Message);

        meta = SentencePiece(ModelTestFiles.Small.VocabSize);
        meta["tokenizer.ggml.model"] = "gpt2";   // a gpt2 tokenizer without merges
        Assert.Contains("'tokenizer.ggml.merges' is missing", Assert.Throws<ModelFormatException>(() => ModelFile.Open(Rewrite(meta))).Message);

        meta = SentencePiece(ModelTestFiles.Small.VocabSize);
        meta["tokenizer.ggml.tokens"] = new[] { 1, 2, 3 };
        Assert.Contains("'tokenizer.ggml.tokens' should be an array of strings, got Int32[]", Assert.Throws<ModelFormatException>(() => ModelFile.Open(Rewrite(meta))).Message);
    }
}
