using System.Globalization;
using System.Text;

namespace Infinite.Tokenization;

/// <summary>
/// The token table with effective types (inferred where the model file has none) and the lookups both
/// algorithms need. Only Normal pieces can be produced by the algorithms; special tokens come only from the
/// literal matcher and byte tokens only from byte fallback.
/// </summary>
internal sealed class TokenVocabulary
{
    public TokenVocabulary(TokenizerData data)
    {
        Tokens = data.Tokens;
        int n = Tokens.Count;
        Types = new TokenType[n];
        Pieces = new Dictionary<string, int>(n, StringComparer.Ordinal);
        ByteIds = Enumerable.Repeat(-1, 256).ToArray();
        for (int id = 0; id < n; id++)
        {
            string text = Tokens[id] ?? throw new ArgumentException($"TokenizerData.Tokens[{id}] is null.", nameof(data));
            var type = data.Types?[id] ?? Infer(data, id, text);
            if (!Enum.IsDefined(type))
                throw new ArgumentException($"TokenizerData.Types[{id}] is {(int)type}, not a known token type.", nameof(data));
            if (type == TokenType.Undefined) type = TokenType.Normal; // as llama.cpp reads GGUF type 0
            Types[id] = type;
            if (type == TokenType.Normal) Pieces.TryAdd(text, id);
            else if (type == TokenType.Byte && TryParseByteToken(text, out byte b) && ByteIds[b] < 0) ByteIds[b] = id;
        }
    }

    public IReadOnlyList<string> Tokens { get; }
    public TokenType[] Types { get; }

    /// <summary>Normal pieces by text (first id wins on duplicates).</summary>
    public Dictionary<string, int> Pieces { get; }

    /// <summary>The &lt;0xNN&gt; token for each byte, or -1.</summary>
    public int[] ByteIds { get; }

    public static bool TryParseByteToken(string text, out byte value)
    {
        value = 0;
        return text.Length == 6 && text.StartsWith("<0x", StringComparison.Ordinal) && text[5] == '>'
            && byte.TryParse(text.AsSpan(3, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value);
    }

    public IEnumerable<(string Text, int Id)> SpecialTokens()
    {
        for (int id = 0; id < Types.Length; id++)
            if (Types[id] is TokenType.Control or TokenType.UserDefined) yield return (Tokens[id], id);
    }

    public static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);

    private static TokenType Infer(TokenizerData data, int id, string text)
    {
        if (id == data.BosId || id == data.EosId) return TokenType.Control;
        if (id == data.UnknownId) return TokenType.Unknown;
        if (data.Kind == TokenizerKind.SentencePiece && TryParseByteToken(text, out _)) return TokenType.Byte;
        return TokenType.Normal;
    }
}
