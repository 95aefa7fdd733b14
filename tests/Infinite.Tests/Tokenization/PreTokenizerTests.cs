using Infinite.Tokenization;

namespace Infinite.Tests.Tokenization;

public class PreTokenizerTests
{
    private const string Sample = "Hello world's 12345!!  \n\n x";

    [Fact]
    public void Gpt2_pattern_splits_the_sample()
    {
        // ' ?\p{L}+' takes the words with their space; "'s" is a contraction; ' ?\p{N}+' takes all digits;
        // '!!' is a punctuation run; '\s+(?!\S)' stops one space before 'x' so that ' x' stays a word.
        Assert.Equal(["Hello", " world", "'s", " 12345", "!!", "  \n\n", " x"], PreTokenizer.For("gpt2").Split(Sample));
        Assert.Equal(PreTokenizer.Gpt2Pattern, PreTokenizer.For(null).Pattern);
        Assert.Equal(PreTokenizer.Gpt2Pattern, PreTokenizer.For("some-unknown-pre").Pattern);
    }

    [Fact]
    public void Llama3_pattern_splits_the_sample()
    {
        // A space before digits is not a letter prefix, so it stands alone; digits go in groups of at most 3;
        // '\s*[\r\n]+' takes the spaces and newlines but leaves the space that prefixes 'x'.
        Assert.Equal(["Hello", " world", "'s", " ", "123", "45", "!!", "  \n\n", " x"], PreTokenizer.For("llama-bpe").Split(Sample));
    }

    [Fact]
    public void Contractions_are_case_insensitive_only_for_llama3()
    {
        Assert.Equal(["I", "'M", " ok"], PreTokenizer.For("llama3").Split("I'M ok"));
        Assert.Equal(["I", "'", "M", " ok"], PreTokenizer.For("default").Split("I'M ok"));
    }

    [Fact]
    public void Llama3_keeps_punctuation_with_following_newlines_and_a_symbol_before_a_word()
    {
        Assert.Equal(["a", ".\n\n", "b"], PreTokenizer.For("llama3").Split("a.\n\nb"));
        Assert.Equal(["$hello", " ", "2024"[..3], "4"], PreTokenizer.For("llama3").Split("$hello 2024"));
    }

    [Fact]
    public void Astral_code_points_count_as_one_character_of_their_category()
    {
        // 😀 (So) is the optional non-letter prefix of a letter run; 𝐀𝐁 (U+1D400, Lu) are letters.
        Assert.Equal(["😀abc"], PreTokenizer.For("llama3").Split("😀abc"));
        Assert.Equal(["𝐀𝐁", " x", " 😀😀"], PreTokenizer.For("gpt2").Split("𝐀𝐁 x 😀😀"));
        // 𝟏 (U+1D7CF, Nd) counts once towards \p{N}{1,3}.
        Assert.Equal(["𝟏𝟏𝟏", "𝟏"], PreTokenizer.For("llama3").Split("𝟏𝟏𝟏𝟏"));
    }

    [Fact]
    public void Custom_regex_keeps_unmatched_gaps()
    {
        Assert.Equal(["ab", "--", "cd", "!"], PreTokenizer.For(@"regex:[a-z]+").Split("ab--cd!"));
        var e = Assert.Throws<ArgumentException>(() => PreTokenizer.For("regex:(unclosed"));
        Assert.Contains("(unclosed", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Pieces_always_concatenate_to_the_input()
    {
        var random = new Random(7);
        const string alphabet = "aZ 9\n\r\t'.,!é中😀👍🏽\u200d\u0301";
        foreach (var pre in new[] { "gpt2", "llama3" })
        {
            for (int i = 0; i < 200; i++)
            {
                var text = string.Concat(Enumerable.Range(0, random.Next(0, 30)).Select(_ => PickRune(random, alphabet)));
                Assert.Equal(text, string.Concat(PreTokenizer.For(pre).Split(text)));
            }
        }
    }

    private static string PickRune(Random random, string alphabet)
    {
        var runes = alphabet.EnumerateRunes().ToArray();
        return runes[random.Next(runes.Length)].ToString();
    }
}
