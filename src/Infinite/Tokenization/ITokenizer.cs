namespace Infinite.Tokenization;

/// <summary>Text to token ids and back, as the engine needs it.</summary>
public interface ITokenizer
{
    int VocabSize { get; }

    /// <summary>Beginning-of-sequence token, or -1 when the model has none.</summary>
    int BosId { get; }

    /// <summary>Tokens that end generation (EOS, end-of-turn).</summary>
    IReadOnlyList<int> EosIds { get; }

    /// <summary>Encodes text; special-token text (e.g. <c>&lt;|eot_id|&gt;</c>) becomes its token when
    /// <paramref name="parseSpecial"/>; <paramref name="addBos"/> prepends BOS where the model wants one.</summary>
    int[] Encode(string text, bool addBos = true, bool parseSpecial = true);

    /// <summary>Decodes ids to text; invalid UTF-8 becomes U+FFFD; control tokens are dropped unless
    /// <paramref name="renderSpecial"/>.</summary>
    string Decode(ReadOnlySpan<int> ids, bool renderSpecial = false);

    /// <summary>The bytes one token stands for (UTF-8 pieces may be partial characters), for streaming.</summary>
    byte[] TokenBytes(int id, bool renderSpecial = false);
}
