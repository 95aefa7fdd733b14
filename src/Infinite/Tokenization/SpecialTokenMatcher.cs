using System.Buffers;

namespace Infinite.Tokenization;

/// <summary>
/// Finds special-token texts in input, leftmost first and longest at each position (as Hugging Face's added-token
/// splitter does), so "&lt;|eot_id|&gt;" wins over a shorter special that is a prefix of it.
/// </summary>
internal sealed class SpecialTokenMatcher
{
    private readonly Dictionary<char, (string Text, int Id)[]> byFirstChar;
    private readonly SearchValues<char> firstChars;

    public SpecialTokenMatcher(IEnumerable<(string Text, int Id)> specials)
    {
        byFirstChar = specials
            .Where(s => s.Text.Length > 0)
            .DistinctBy(s => s.Text, StringComparer.Ordinal)
            .GroupBy(s => s.Text[0])
            .ToDictionary(g => g.Key, g => g.OrderByDescending(s => s.Text.Length).ToArray());
        firstChars = SearchValues.Create(byFirstChar.Keys.ToArray());
    }

    public bool IsEmpty => byFirstChar.Count == 0;

    public List<(int Start, int Length, int Id)> FindAll(string text)
    {
        var found = new List<(int, int, int)>();
        int pos = 0;
        while (pos < text.Length)
        {
            int rel = text.AsSpan(pos).IndexOfAny(firstChars);
            if (rel < 0) break;
            int at = pos + rel;
            var match = Longest(text, at);
            if (match is (string t, int id))
            {
                found.Add((at, t.Length, id));
                pos = at + t.Length;
            }
            else
            {
                pos = at + 1;
            }
        }
        return found;
    }

    private (string, int)? Longest(string text, int at)
    {
        foreach (var candidate in byFirstChar[text[at]])
            if (at + candidate.Text.Length <= text.Length
                && string.CompareOrdinal(text, at, candidate.Text, 0, candidate.Text.Length) == 0)
                return candidate;
        return null;
    }
}
