using System.Text;

namespace Infinite.Tokenization;

/// <summary>
/// GPT-2 style byte-level BPE: regex pre-tokens, their UTF-8 bytes spelled in the GPT-2 alphabet, then ranked
/// merges (lowest rank first). Pre-token results are memoised since the same words recur across requests.
/// </summary>
internal sealed class ByteLevelBpeModel : ITokenModel
{
    private const int CacheCapacity = 65536;
    private const int CacheMaxKeyLength = 64;

    private readonly TokenVocabulary vocab;
    private readonly Dictionary<(string, string), int> ranks;
    private readonly PreTokenizer preTokenizer;
    private readonly bool ignoreMerges;
    private readonly int? unknownId;
    private readonly PreTokenCache cache = new(CacheCapacity, CacheMaxKeyLength);

    public ByteLevelBpeModel(TokenVocabulary vocab, IReadOnlyList<string> merges, PreTokenizer preTokenizer,
        bool ignoreMerges, int? unknownId)
    {
        this.vocab = vocab;
        this.preTokenizer = preTokenizer;
        this.ignoreMerges = ignoreMerges;
        this.unknownId = unknownId;
        ranks = MergeRanks.Build(merges, vocab);
    }

    public bool AddsDummyPrefix => false;

    public void Encode(string fragment, bool startsFragment, List<int> output)
    {
        foreach (var piece in preTokenizer.Split(fragment))
        {
            if (!cache.TryGet(piece, out var ids))
            {
                ids = EncodePreToken(piece);
                cache.Add(piece, ids);
            }
            output.AddRange(ids);
        }
    }

    public byte[] PieceBytes(int id)
    {
        string text = vocab.Tokens[id];
        var bytes = new List<byte>(text.Length);
        foreach (char c in text)
        {
            if (ByteLevelAlphabet.TryToByte(c, out byte b)) bytes.Add(b);
            else bytes.AddRange(Encoding.UTF8.GetBytes(c.ToString()));
        }
        return bytes.ToArray();
    }

    private int[] EncodePreToken(string piece)
    {
        string spelled = ByteLevelAlphabet.Encode(Encoding.UTF8.GetBytes(piece));
        if (ignoreMerges && vocab.Pieces.TryGetValue(spelled, out int whole)) return [whole];
        var symbols = new List<string>(spelled.Length);
        foreach (char c in spelled) symbols.Add(c.ToString());
        var merged = PairMerger.Merge(symbols, (l, r) => ranks.TryGetValue((l, r), out int rank) ? rank : null);
        var ids = new List<int>(merged.Count);
        foreach (var symbol in merged)
        {
            if (vocab.Pieces.TryGetValue(symbol, out int id)) ids.Add(id);
            else if (unknownId is int unk) ids.Add(unk);
            else throw SentencePieceModel.Unrepresentable(symbol, piece);
        }
        return ids.ToArray();
    }
}
