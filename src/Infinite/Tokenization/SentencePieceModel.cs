using System.Text;

namespace Infinite.Tokenization;

/// <summary>
/// SentencePiece BPE as llama.cpp runs it: spaces become U+2581, each fragment gets a leading U+2581, characters
/// merge pairwise by the score of the resulting piece (highest first, leftmost on ties), and anything left that
/// is not a piece falls back to &lt;0xNN&gt; byte tokens, or to the unknown token when the model has none.
/// Converted Hugging Face files carry merges instead of scores; then merge rank decides (lowest first).
/// </summary>
internal sealed class SentencePieceModel : ITokenModel
{
    public const char SpaceMark = '\u2581';

    private readonly TokenVocabulary vocab;
    private readonly int? unknownId;
    private readonly PairMerger.Priority priority;
    private readonly bool hasAllByteTokens;

    public SentencePieceModel(TokenVocabulary vocab, IReadOnlyList<float>? scores, IReadOnlyList<string>? merges, int? unknownId)
    {
        this.vocab = vocab;
        this.unknownId = unknownId;
        hasAllByteTokens = vocab.ByteIds.All(id => id >= 0);
        if (merges is not null)
        {
            var ranks = MergeRanks.Build(merges, vocab);
            priority = (l, r) => ranks.TryGetValue((l, r), out int rank) ? rank : null;
        }
        else if (scores is not null)
        {
            priority = (l, r) => vocab.Pieces.TryGetValue(l + r, out int id) ? -(double)scores[id] : null;
        }
        else
        {
            throw new ArgumentException("A SentencePiece tokenizer needs TokenizerData.Scores (or Merges).");
        }
    }

    public bool AddsDummyPrefix => true;

    public void Encode(string fragment, bool startsFragment, List<int> output)
    {
        string text = (startsFragment ? " " : "") + fragment;
        text = text.Replace(' ', SpaceMark);
        var symbols = new List<string>(text.Length);
        foreach (var rune in text.EnumerateRunes()) symbols.Add(rune.ToString());
        foreach (var symbol in PairMerger.Merge(symbols, priority))
        {
            if (vocab.Pieces.TryGetValue(symbol, out int id)) output.Add(id);
            else if (hasAllByteTokens) foreach (byte b in Encoding.UTF8.GetBytes(symbol)) output.Add(vocab.ByteIds[b]);
            else if (unknownId is int unk) output.Add(unk);
            else throw Unrepresentable(symbol, fragment);
        }
    }

    public byte[] PieceBytes(int id)
    {
        string text = vocab.Tokens[id];
        if (vocab.Types[id] == TokenType.Byte && TokenVocabulary.TryParseByteToken(text, out byte b)) return [b];
        return Encoding.UTF8.GetBytes(text.Replace(SpaceMark, ' '));
    }

    internal static ArgumentException Unrepresentable(string symbol, string fragment) => new(
        $"Cannot encode U+{char.ConvertToUtf32(symbol, 0):X4} in \"{Shorten(fragment)}\": it is not in the vocabulary "
        + "and the model has neither byte tokens nor an unknown token.", "text");

    private static string Shorten(string s) => s.Length <= 40 ? s : s[..40] + "...";
}
