using System.Collections.Concurrent;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Infinite.Tokenization;

/// <summary>
/// Splits text into pre-tokens with the regex a model names. Unmatched gaps are kept as pieces of their own
/// (Hugging Face "Isolated" split), so the pieces always concatenate back to the input.
/// </summary>
/// <remarks>
/// .NET regexes see UTF-16 units, while the reference implementations see code points: an astral letter would
/// be two non-letters to <c>\p{L}</c>. Text with surrogate pairs is therefore matched through a proxy string
/// holding one BMP character of the same Unicode category per code point, and the matches are mapped back.
/// Checked against Python's <c>regex</c> module on random mixed-script text: the one difference is "'ſ" (long s),
/// which Python's case folding takes as the contraction "'s" and .NET (like llama.cpp) does not.
/// </remarks>
public sealed class PreTokenizer
{
    /// <summary>GPT-2 (tokenizer.ggml.pre "default"/"gpt2", and the Hugging Face ByteLevel pre-tokenizer).</summary>
    public const string Gpt2Pattern =
        @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    /// <summary>Llama 3 (tokenizer.ggml.pre "llama-bpe"/"llama3").</summary>
    public const string Llama3Pattern =
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    private const string RegexPrefix = "regex:";
    private static readonly ConcurrentDictionary<string, Regex> Compiled = new(StringComparer.Ordinal);
    private static readonly Lazy<Dictionary<UnicodeCategory, char>> CategoryProxies = new(BuildCategoryProxies);

    private readonly Regex regex;

    private PreTokenizer(string pattern)
    {
        Pattern = pattern;
        regex = Compiled.GetOrAdd(pattern, Compile);
    }

    public string Pattern { get; }

    /// <summary>
    /// The pre-tokenizer for a GGUF <c>tokenizer.ggml.pre</c> value. Names this engine does not know get the
    /// GPT-2 pattern, which is what most byte-level models were trained with or close to.
    /// </summary>
    public static PreTokenizer For(string? pre) => pre switch
    {
        null or "default" or "gpt2" => new PreTokenizer(Gpt2Pattern),
        "llama-bpe" or "llama3" => new PreTokenizer(Llama3Pattern),
        _ when pre.StartsWith(RegexPrefix, StringComparison.Ordinal) => new PreTokenizer(pre[RegexPrefix.Length..]),
        _ => new PreTokenizer(Gpt2Pattern),
    };

    /// <summary>True when <paramref name="pre"/> selects the Llama 3 rules (which also ignore merges for whole words).</summary>
    public static bool IsLlama3(string? pre) => pre is "llama-bpe" or "llama3";

    public List<string> Split(string text)
    {
        var pieces = new List<string>();
        if (text.Length == 0) return pieces;
        int[]? offsets = null;
        string subject = text;
        if (HasSurrogates(text)) (subject, offsets) = BuildProxy(text);
        int Map(int i) => offsets is null ? i : offsets[i];

        int covered = 0;
        foreach (var m in regex.EnumerateMatches(subject))
        {
            if (m.Length == 0) continue;
            int start = Map(m.Index), end = Map(m.Index + m.Length);
            if (start > covered) pieces.Add(text[covered..start]);
            pieces.Add(text[start..end]);
            covered = end;
        }
        if (covered < text.Length) pieces.Add(text[covered..]);
        return pieces;
    }

    private static Regex Compile(string pattern)
    {
        try
        {
            return new Regex(pattern, RegexOptions.Compiled | RegexOptions.CultureInvariant);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"Pre-tokenizer pattern '{pattern}' is not a valid .NET regex: {e.Message}", e);
        }
    }

    private static bool HasSurrogates(string text)
    {
        foreach (char c in text) if (char.IsSurrogate(c)) return true;
        return false;
    }

    /// <summary>One char per code point; offsets[k] is where code point k starts in the original text.</summary>
    private static (string Proxy, int[] Offsets) BuildProxy(string text)
    {
        var proxy = new List<char>(text.Length);
        var offsets = new List<int>(text.Length + 1);
        var proxies = CategoryProxies.Value;
        for (int i = 0; i < text.Length;)
        {
            offsets.Add(i);
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                var category = CharUnicodeInfo.GetUnicodeCategory(char.ConvertToUtf32(text[i], text[i + 1]));
                proxy.Add(proxies.TryGetValue(category, out char p) ? p : '\uFFFD');
                i += 2;
            }
            else
            {
                proxy.Add(text[i]);
                i++;
            }
        }
        offsets.Add(text.Length);
        return (new string(proxy.ToArray()), offsets.ToArray());
    }

    // Representatives come from above Latin-1 so ASCII-specific pattern parts (contractions) never match them.
    private static Dictionary<UnicodeCategory, char> BuildCategoryProxies()
    {
        var map = new Dictionary<UnicodeCategory, char>();
        for (int c = 0x100; c <= 0xFFFF; c++)
        {
            if (c is >= 0xD800 and <= 0xDFFF) continue;
            var category = CharUnicodeInfo.GetUnicodeCategory((char)c);
            if (!map.ContainsKey(category) && !char.IsWhiteSpace((char)c)) map[category] = (char)c;
        }
        return map;
    }
}
