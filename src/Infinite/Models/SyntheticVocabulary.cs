using System.Text;
using System.Text.RegularExpressions;
using Infinite.Tokenization;

namespace Infinite.Models;

/// <summary>
/// A small byte-level BPE vocabulary for synthetic models: the 256 GPT-2 byte tokens, Llama 3's chat special
/// tokens, then merges learned by classic BPE training on a built-in English text (most frequent pair first,
/// ties broken by ordinal order, so the result is deterministic). When the text has no pairs left before
/// the requested size, reserved special tokens fill the rest, as Llama 3 does.
/// </summary>
public sealed partial class SyntheticVocabulary
{
    public static readonly string[] SpecialTokens =
        ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"];

    public const string ChatTemplate =
        "{{- bos_token }}{%- for message in messages %}{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{%- endif %}";

    private const string TrainingText =
        "The river ran past the old mill at the edge of the town, and every morning the miller opened the doors " +
        "to let the light in. He had worked there for many years, and he knew the sound of each wheel and the " +
        "smell of the grain. In the spring the water was high and the wheels turned fast; in the summer the " +
        "water was low and the work was slow. The children of the town came to watch the stones turn, and the " +
        "miller told them stories about the people who had built the mill a long time ago. They were farmers " +
        "and traders, and they wanted a place where they could bring their wheat and leave with flour. " +
        "Today the town is larger, the roads are better, and the trains carry the flour to the cities, but " +
        "the mill is still there, and the river still runs past it. People say that if you stand on the bridge " +
        "in the evening you can hear the wheels, even though they stopped turning many years ago. " +
        "What do you think? Is it the water, the wind, or only a memory of the work that was done there? " +
        "The answer does not matter very much. What matters is that the town remembers where it came from, " +
        "that the children still ask for the stories, and that someone is still willing to tell them. " +
        "1, 2, 3: count the stones, the doors and the windows; there are 12 windows and 4 doors in 2026.";

    [GeneratedRegex(@"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+")]
    private static partial Regex Pretokenizer();

    public IReadOnlyList<string> Tokens { get; }
    public IReadOnlyList<TokenType> Types { get; }
    public IReadOnlyList<string> Merges { get; }
    public int BosId => 256;
    public int EosId => 257;
    public int EotId => 260;

    /// <summary>The token of each byte value under GPT-2's byte-to-character mapping.</summary>
    public static IReadOnlyList<string> ByteTokens { get; } = BuildByteTokens();

    public SyntheticVocabulary(int vocabSize)
    {
        int minimum = 256 + SpecialTokens.Length;
        if (vocabSize < minimum)
            throw new ArgumentOutOfRangeException(nameof(vocabSize), vocabSize, $"a synthetic vocabulary needs at least {minimum} tokens (256 bytes + {SpecialTokens.Length} special tokens)");
        var tokens = new List<string>(vocabSize);
        var types = new List<TokenType>(vocabSize);
        // GPT-2 orders byte tokens by their printable character, bytes 33..126 first, as Llama 3 does.
        foreach (string t in ByteTokens.Order(StringComparer.Ordinal)) { tokens.Add(t); types.Add(TokenType.Normal); }
        foreach (string t in SpecialTokens) { tokens.Add(t); types.Add(TokenType.Control); }
        var known = new HashSet<string>(tokens, StringComparer.Ordinal);
        var merges = new List<string>();
        var words = Pretokenizer().Matches(TrainingText)
            .GroupBy(m => m.Value, StringComparer.Ordinal)
            .Select(g => (Symbols: Encoding.UTF8.GetBytes(g.Key).Select(b => ByteTokens[b]).ToList(), Count: g.Count()))
            .ToList();
        while (tokens.Count < vocabSize)
        {
            var pairs = new Dictionary<(string, string), int>();
            foreach (var (symbols, count) in words)
                for (int i = 0; i + 1 < symbols.Count; i++)
                    pairs[(symbols[i], symbols[i + 1])] = pairs.GetValueOrDefault((symbols[i], symbols[i + 1])) + count;
            if (pairs.Count == 0) break;
            var best = pairs.OrderByDescending(p => p.Value)
                .ThenBy(p => p.Key.Item1, StringComparer.Ordinal).ThenBy(p => p.Key.Item2, StringComparer.Ordinal).First().Key;
            merges.Add($"{best.Item1} {best.Item2}");
            string merged = best.Item1 + best.Item2;
            if (known.Add(merged)) { tokens.Add(merged); types.Add(TokenType.Normal); }
            foreach (var (symbols, _) in words)
                for (int i = 0; i + 1 < symbols.Count; i++)
                    if (symbols[i] == best.Item1 && symbols[i + 1] == best.Item2)
                    {
                        symbols[i] = merged;
                        symbols.RemoveAt(i + 1);
                    }
        }
        for (int k = 0; tokens.Count < vocabSize; k++) { tokens.Add($"<|reserved_special_token_{k}|>"); types.Add(TokenType.Control); }
        Tokens = tokens;
        Types = types;
        Merges = merges;
    }

    /// <summary>The vocabulary as <see cref="TokenizerData"/> (what a GGUF of it reads back as).</summary>
    public TokenizerData ToTokenizerData() => new(
        TokenizerKind.ByteLevelBpe, Tokens, null, Types, Merges, BosId, EosId, null, null,
        AddBos: true, AddEos: false, Pre: "llama-bpe", ChatTemplate, ExtraEosIds: [EotId]);

    private static string[] BuildByteTokens()
    {
        var result = new string[256];
        int next = 256;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= 33 and <= 126 or >= 161 and <= 172 or >= 174 and <= 255;
            result[b] = ((char)(printable ? b : next++)).ToString();
        }
        return result;
    }
}
