namespace Infinite.Tokenization;

/// <summary>
/// Merge list ("left right", best first) as a pair -> rank table. A merge whose result is not a Normal vocabulary
/// piece is skipped: applying it could only produce a piece with no id.
/// </summary>
internal static class MergeRanks
{
    public static Dictionary<(string, string), int> Build(IReadOnlyList<string> merges, TokenVocabulary vocab)
    {
        var ranks = new Dictionary<(string, string), int>(merges.Count);
        for (int rank = 0; rank < merges.Count; rank++)
        {
            var (left, right) = Split(merges[rank], rank);
            if (vocab.Pieces.ContainsKey(left + right)) ranks.TryAdd((left, right), rank);
        }
        return ranks;
    }

    private static (string, string) Split(string merge, int rank)
    {
        if (merge is null) throw new ArgumentException($"TokenizerData.Merges[{rank}] is null.");
        int space = merge.IndexOf(' ', StringComparison.Ordinal);
        if (space <= 0 || space == merge.Length - 1 || merge.IndexOf(' ', space + 1) >= 0)
            throw new ArgumentException($"TokenizerData.Merges[{rank}] '{merge}' is not of the form 'left right'.");
        return (merge[..space], merge[(space + 1)..]);
    }
}
