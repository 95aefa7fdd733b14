using System.Text;

namespace Infinite.Tokenization;

/// <summary>
/// The engine's tokenizer: literal special-token matching around one of the two algorithms, and the decoding
/// rules (byte assembly, SentencePiece's dummy-prefix space). Immutable after <see cref="Create"/> and safe to
/// share between concurrent requests.
/// </summary>
/// <remarks>
/// Lone UTF-16 surrogates cannot be spelled in UTF-8; Encode treats each as U+FFFD, so such text decodes with
/// U+FFFD in their place. U+2581 in the input of a SentencePiece model decodes as a space (it is the model's
/// space mark). <c>addBos</c> means "add the model's special tokens", so it also appends EOS when the model sets
/// AddEos (llama.cpp's add_special). SentencePiece gets its dummy-prefix space at the start of the text and after
/// every special token, as llama.cpp does.
/// </remarks>
public sealed class Tokenizer : ITokenizer
{
    // End-of-turn markers of common chat formats: generation must stop on them even when the model file names
    // only the end-of-text token as EOS.
    private static readonly string[] EndOfTurnTexts = ["<|eot_id|>", "<|eom_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>"];

    private readonly TokenizerData data;
    private readonly TokenVocabulary vocab;
    private readonly ITokenModel model;
    private readonly SpecialTokenMatcher specials;
    private readonly byte[][] pieceBytes;
    private readonly byte[][] specialBytes;

    private Tokenizer(TokenizerData data, TokenVocabulary vocab, ITokenModel model)
    {
        this.data = data;
        this.vocab = vocab;
        this.model = model;
        specials = new SpecialTokenMatcher(vocab.SpecialTokens());
        int n = vocab.Tokens.Count;
        pieceBytes = new byte[n][];
        specialBytes = new byte[n][];
        for (int id = 0; id < n; id++)
        {
            var type = vocab.Types[id];
            specialBytes[id] = Encoding.UTF8.GetBytes(vocab.Tokens[id]);
            pieceBytes[id] = type switch
            {
                TokenType.Normal or TokenType.Byte => model.PieceBytes(id),
                TokenType.UserDefined => specialBytes[id],
                TokenType.Unknown => "\uFFFD"u8.ToArray(),
                _ => [], // Control, Unused: dropped unless rendered.
            };
        }
        var eos = new List<int>();
        if (data.EosId >= 0) eos.Add(data.EosId);
        eos.AddRange(data.ExtraEosIds ?? []);
        for (int id = 0; id < n; id++)
            if (vocab.Types[id] == TokenType.Control && EndOfTurnTexts.Contains(vocab.Tokens[id])) eos.Add(id);
        EosIds = eos.Distinct().ToArray();
    }

    public TokenizerKind Kind => data.Kind;
    public int VocabSize => vocab.Tokens.Count;
    public int BosId => data.BosId;
    public IReadOnlyList<int> EosIds { get; }
    public int? UnknownId => data.UnknownId;

    /// <summary>The vocabulary text of a token (as stored: ▁ or GPT-2 alphabet spelling).</summary>
    public string TokenText(int id) => vocab.Tokens[CheckId(id)];

    public TokenType TypeOf(int id) => vocab.Types[CheckId(id)];

    /// <summary>The id of a special (Control or UserDefined) token by its text, or null.</summary>
    public int? FindSpecialToken(string text)
    {
        foreach (var (t, id) in vocab.SpecialTokens()) if (t == text) return id;
        return null;
    }

    /// <summary>Validates <paramref name="data"/> and builds the tokenizer its <see cref="TokenizerData.Kind"/> names.</summary>
    public static Tokenizer Create(TokenizerData data)
    {
        ArgumentNullException.ThrowIfNull(data);
        Validate(data);
        var vocab = new TokenVocabulary(data);
        ITokenModel model = data.Kind switch
        {
            TokenizerKind.SentencePiece => new SentencePieceModel(vocab, data.Scores, data.Merges, data.UnknownId),
            TokenizerKind.ByteLevelBpe => new ByteLevelBpeModel(vocab,
                data.Merges ?? throw new ArgumentException("A byte-level BPE tokenizer needs TokenizerData.Merges.", nameof(data)),
                PreTokenizer.For(data.Pre), data.IgnoreMerges || PreTokenizer.IsLlama3(data.Pre), data.UnknownId),
            _ => throw new ArgumentException($"TokenizerData.Kind {data.Kind} is not a known tokenizer kind.", nameof(data)),
        };
        return new Tokenizer(data, vocab, model);
    }

    public int[] Encode(string text, bool addBos = true, bool parseSpecial = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        text = ReplaceLoneSurrogates(text);
        var output = new List<int>(text.Length / 3 + 2);
        if (addBos && data.AddBos && data.BosId >= 0) output.Add(data.BosId);
        bool fragmentStart = true;
        int pos = 0;
        if (parseSpecial && !specials.IsEmpty)
        {
            foreach (var (start, length, id) in specials.FindAll(text))
            {
                if (start > pos) model.Encode(text[pos..start], fragmentStart, output);
                output.Add(id);
                fragmentStart = true;
                pos = start + length;
            }
        }
        if (pos < text.Length) model.Encode(text[pos..], fragmentStart, output);
        if (addBos && data.AddEos && data.EosId >= 0) output.Add(data.EosId);
        return output.ToArray();
    }

    public string Decode(ReadOnlySpan<int> ids, bool renderSpecial = false)
    {
        var bytes = new List<byte>(ids.Length * 4);
        bool stripSpace = model.AddsDummyPrefix;
        foreach (int id in ids) bytes.AddRange(DecodePiece(id, renderSpecial, ref stripSpace));
        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    public byte[] TokenBytes(int id, bool renderSpecial = false)
    {
        CheckId(id);
        return (byte[])(renderSpecial && IsRenderedOnlyOnRequest(id) ? specialBytes[id] : pieceBytes[id]).Clone();
    }

    public StreamingDecoder CreateStreamingDecoder(bool renderSpecial = false) => new(this, renderSpecial);

    /// <summary>
    /// One token's bytes in context. <paramref name="stripSpace"/> carries SentencePiece's rule across calls: the
    /// dummy-prefix space Encode puts at the start and after each special token is removed again.
    /// </summary>
    internal ReadOnlySpan<byte> DecodePiece(int id, bool renderSpecial, ref bool stripSpace)
    {
        CheckId(id);
        var bytes = (renderSpecial && IsRenderedOnlyOnRequest(id) ? specialBytes[id] : pieceBytes[id]).AsSpan();
        var type = vocab.Types[id];
        if (type is TokenType.Control or TokenType.UserDefined)
        {
            stripSpace = model.AddsDummyPrefix;
            return bytes;
        }
        if (stripSpace && bytes.Length > 0 && bytes[0] == (byte)' ') bytes = bytes[1..];
        stripSpace = false;
        return bytes;
    }

    internal bool AddsDummyPrefix => model.AddsDummyPrefix;

    private bool IsRenderedOnlyOnRequest(int id) => vocab.Types[id] is TokenType.Control or TokenType.Unused or TokenType.Unknown;

    private int CheckId(int id)
    {
        if ((uint)id >= (uint)vocab.Tokens.Count)
            throw new ArgumentOutOfRangeException(nameof(id), id, $"Token id {id} is outside the vocabulary (0..{vocab.Tokens.Count - 1}).");
        return id;
    }

    private static string ReplaceLoneSurrogates(string text)
    {
        char[]? copy = null;
        for (int i = 0; i < text.Length; i++)
        {
            if (!char.IsSurrogate(text[i])) continue;
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) { i++; continue; }
            copy ??= text.ToCharArray();
            copy[i] = '\uFFFD';
        }
        return copy is null ? text : new string(copy);
    }

    private static void Validate(TokenizerData d)
    {
        if (d.Tokens is null || d.Tokens.Count == 0) throw new ArgumentException("TokenizerData.Tokens is empty.", nameof(d));
        int n = d.Tokens.Count;
        if (d.Scores is not null && d.Scores.Count != n)
            throw new ArgumentException($"TokenizerData.Scores has {d.Scores.Count} entries but Tokens has {n}.", nameof(d));
        if (d.Types is not null && d.Types.Count != n)
            throw new ArgumentException($"TokenizerData.Types has {d.Types.Count} entries but Tokens has {n}.", nameof(d));
        CheckOptionalId(d.BosId, n, "BosId");
        CheckOptionalId(d.EosId, n, "EosId");
        if (d.UnknownId is int unk) CheckOptionalId(unk < 0 ? n : unk, n, "UnknownId");
        if (d.PadId is int pad) CheckOptionalId(pad, n, "PadId");
        foreach (int extra in d.ExtraEosIds ?? []) CheckOptionalId(extra < 0 ? n : extra, n, "ExtraEosIds");
    }

    private static void CheckOptionalId(int id, int n, string field)
    {
        if (id < -1 || id >= n)
            throw new ArgumentException($"TokenizerData.{field} = {id} is outside the vocabulary of {n} tokens.", "data");
    }
}
