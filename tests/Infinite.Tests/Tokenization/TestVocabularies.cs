using Infinite.Tokenization;

namespace Infinite.Tests.Tokenization;

/// <summary>Small hand-built vocabularies whose encodings can be worked out on paper.</summary>
internal static class TestVocabularies
{
    public const int Unk = 0, Bos = 1, Eos = 2, FirstByte = 3;
    public const int Space = 259, A = 260, B = 261, C = 262, AB = 263, BC = 264, SpaceA = 265, ABC = 266, AA = 267;
    public const int UserCA = 268;

    public static int ByteId(int b) => FirstByte + b;

    /// <summary>
    /// SentencePiece: &lt;unk&gt;, &lt;s&gt;, &lt;/s&gt;, 256 byte tokens, then pieces whose scores make the merge
    /// order matter: bc (-2) beats ▁a (-3) beats abc (-4) beats ab (-5); aa (-1) best of all; "ca" is UserDefined.
    /// </summary>
    public static TokenizerData SentencePiece(bool byteTokens = true, bool unknown = true)
    {
        var tokens = new List<string> { "<unk>", "<s>", "</s>" };
        var types = new List<TokenType> { TokenType.Unknown, TokenType.Control, TokenType.Control };
        var scores = new List<float> { 0, 0, 0 };
        for (int b = 0; b < 256; b++)
        {
            tokens.Add($"<0x{b:X2}>");
            types.Add(byteTokens ? TokenType.Byte : TokenType.Unused);
            scores.Add(0);
        }
        void Piece(string text, float score, TokenType type = TokenType.Normal)
        {
            tokens.Add(text);
            types.Add(type);
            scores.Add(score);
        }
        Piece("\u2581", -1);
        Piece("a", -1);
        Piece("b", -1);
        Piece("c", -1);
        Piece("ab", -5);
        Piece("bc", -2);
        Piece("\u2581a", -3);
        Piece("abc", -4);
        Piece("aa", -1);
        Piece("ca", 0, TokenType.UserDefined);
        if (!unknown) types[Unk] = TokenType.Unused;
        return new TokenizerData(TokenizerKind.SentencePiece, tokens, scores, types, null, Bos, Eos,
            unknown ? Unk : null, null, AddBos: true, AddEos: false, Pre: null, ChatTemplate: null);
    }

    /// <summary>
    /// SentencePiece with every printable ASCII character plus common pieces, for round trips of real text.
    /// </summary>
    public static TokenizerData SentencePieceText()
    {
        var data = SentencePiece();
        var tokens = data.Tokens.ToList();
        var types = data.Types!.ToList();
        var scores = data.Scores!.ToList();
        foreach (var piece in new[] { "\u2581t", "he", "\u2581the", "\u2581w", "or", "ld", "\u2581wor", "\u2581world", "in", "\u2581in", "é", "中" }
                     .Concat(Enumerable.Range(' ' + 1, 94).Select(c => ((char)c).ToString())))
        {
            if (tokens.Contains(piece)) continue;
            tokens.Add(piece);
            types.Add(TokenType.Normal);
            scores.Add(-10 - piece.Length * -1f - tokens.Count * 0.001f);
        }
        return data with { Tokens = tokens, Types = types, Scores = scores };
    }

    /// <summary>Byte-level: ids 0..255 are the single GPT-2 alphabet characters in byte order, then merged pieces.</summary>
    public static TokenizerData ByteLevel(IReadOnlyList<string> merges, string? pre = null, params string[] controls)
    {
        var tokens = Enumerable.Range(0, 256).Select(b => ByteLevelAlphabet.ToChar((byte)b).ToString()).ToList();
        foreach (var merge in merges)
        {
            string piece = merge.Replace(" ", "", StringComparison.Ordinal);
            if (!tokens.Contains(piece)) tokens.Add(piece);
        }
        var types = Enumerable.Repeat(TokenType.Normal, tokens.Count).ToList();
        foreach (var control in controls)
        {
            tokens.Add(control);
            types.Add(TokenType.Control);
        }
        int bos = controls.Length > 0 ? tokens.Count - controls.Length : -1;
        int eos = controls.Length > 1 ? bos + 1 : -1;
        return new TokenizerData(TokenizerKind.ByteLevelBpe, tokens, null, types, merges, bos, eos, null, null,
            AddBos: bos >= 0, AddEos: false, Pre: pre, ChatTemplate: null);
    }

    /// <summary>"hello world" merges, best first.</summary>
    public static readonly string[] HelloWorldMerges =
    [
        "\u0120 w", "o r", "\u0120w or", "l d", "\u0120wor ld", "h e", "l l", "he ll", "hell o",
    ];

    public static int IdOf(TokenizerData data, string token) => data.Tokens.ToList().IndexOf(token);
}
