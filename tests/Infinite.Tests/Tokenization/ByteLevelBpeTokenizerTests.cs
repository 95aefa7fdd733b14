using Infinite.Tokenization;
using static Infinite.Tests.Tokenization.TestVocabularies;

namespace Infinite.Tests.Tokenization;

public class ByteLevelBpeTokenizerTests
{
    [Fact]
    public void Words_merge_into_their_pieces()
    {
        var data = ByteLevel(HelloWorldMerges);
        var tok = Tokenizer.Create(data);
        Assert.Equal([IdOf(data, "hello"), IdOf(data, "\u0120world")], tok.Encode("hello world"));
        Assert.Equal("hello world", tok.Decode(tok.Encode("hello world")));
        // "helloworld" is one pre-token: h-e-l-l-o merge, "world" has no Ġ so only "or" and "ld" apply.
        Assert.Equal([IdOf(data, "hello"), 'w', IdOf(data, "or"), IdOf(data, "ld")], tok.Encode("helloworld"));
    }

    [Fact]
    public void Lower_rank_merges_first()
    {
        // "abc": with "b c" ranked before "a b" the result is a | bc; with the order reversed, ab | c.
        var bcFirst = ByteLevel(["b c", "a b"]);
        Assert.Equal(['a', IdOf(bcFirst, "bc")], Tokenizer.Create(bcFirst).Encode("abc"));
        var abFirst = ByteLevel(["a b", "b c"]);
        Assert.Equal([IdOf(abFirst, "ab"), 'c'], Tokenizer.Create(abFirst).Encode("abc"));
    }

    [Fact]
    public void Bytes_are_spelled_in_the_gpt2_alphabet()
    {
        var tok = Tokenizer.Create(ByteLevel([]));
        // Ids 0..255 are bytes in order, so every encoding is the UTF-8 bytes themselves.
        Assert.Equal([0xE4, 0xB8, 0xAD], tok.Encode("中"));
        Assert.Equal([' ', 0xF0, 0x9F, 0x98, 0x80], tok.Encode(" 😀"));
        Assert.Equal(new byte[] { 0x0A }, tok.TokenBytes(0x0A));
    }

    [Fact]
    public void Special_tokens_are_split_out_before_pre_tokenization()
    {
        var data = ByteLevel(HelloWorldMerges, "llama-bpe", "<|begin_of_text|>", "<|eot_id|>", "<|eot|>");
        var tok = Tokenizer.Create(data);
        int bos = IdOf(data, "<|begin_of_text|>"), eot = IdOf(data, "<|eot_id|>"), shortEot = IdOf(data, "<|eot|>");
        Assert.Equal([bos, IdOf(data, "hello"), eot, IdOf(data, "\u0120world"), shortEot], tok.Encode("hello<|eot_id|> world<|eot|>"));
        Assert.Equal([IdOf(data, "hello")], tok.Encode("hello", addBos: false));
        var literal = tok.Encode("<|eot_id|>", addBos: false, parseSpecial: false);
        Assert.Equal("<|eot_id|>".Select(c => (int)c), literal);
        Assert.Equal("hello world", tok.Decode([bos, IdOf(data, "hello"), IdOf(data, "\u0120world"), eot]));
        Assert.Equal("<|begin_of_text|>hello<|eot_id|>", tok.Decode([bos, IdOf(data, "hello"), eot], renderSpecial: true));
        // Control tokens named like end-of-turn markers stop generation too.
        Assert.Contains(eot, tok.EosIds);
    }

    [Fact]
    public void Llama3_ignores_merges_for_whole_words_in_the_vocabulary()
    {
        // "abc" is a piece, but no merge chain reaches it from a|b|c when "b c" then "a bc" are missing.
        var data = ByteLevel(["a b"]);
        data = data with { Tokens = data.Tokens.Append("abc").ToList(), Types = data.Types!.Append(TokenType.Normal).ToList() };
        Assert.Equal([IdOf(data, "ab"), 'c'], Tokenizer.Create(data).Encode("abc"));
        Assert.Equal([IdOf(data, "abc")], Tokenizer.Create(data with { Pre = "llama3" }).Encode("abc"));
        Assert.Equal([IdOf(data, "abc")], Tokenizer.Create(data with { IgnoreMerges = true }).Encode("abc"));
    }

    [Fact]
    public void Malformed_merges_are_rejected_with_their_index()
    {
        var e = Assert.Throws<ArgumentException>(() => Tokenizer.Create(ByteLevel([]) with { Merges = ["h e", "nospace"] }));
        Assert.Contains("Merges[1]", e.Message, StringComparison.Ordinal);
        Assert.Contains("Merges", Assert.Throws<ArgumentException>(() => Tokenizer.Create(ByteLevel([]) with { Merges = null })).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Decode_replaces_invalid_utf8()
    {
        var tok = Tokenizer.Create(ByteLevel([]));
        Assert.Equal("a\uFFFDb", tok.Decode(['a', 0xE4, 0xB8, 'b']));
        Assert.Equal("\uFFFD", tok.Decode([0xFF]));
    }

    [Fact]
    public void Merges_that_would_produce_a_special_token_are_not_applied()
    {
        var data = ByteLevel(["a b"]);
        var types = data.Types!.ToList();
        types[IdOf(data, "ab")] = TokenType.UserDefined;
        var tok = Tokenizer.Create(data with { Types = types });
        Assert.Equal(['a', 'b'], tok.Encode("ab", parseSpecial: false));
        Assert.Equal([IdOf(data, "ab")], tok.Encode("ab", parseSpecial: true));
    }
}
