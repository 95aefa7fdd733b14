using Infinite.Tokenization;
using static Infinite.Tests.Tokenization.TestVocabularies;

namespace Infinite.Tests.Tokenization;

public class SentencePieceTokenizerTests
{
    private static readonly Tokenizer Spm = Tokenizer.Create(SentencePiece());

    [Fact]
    public void Scores_choose_the_merge_order()
    {
        // "▁abc": pairs ▁a(-3) ab(-5) bc(-2) -> bc first; then ▁a(-3) beats a+bc=abc(-4) -> ▁a | bc.
        Assert.Equal([SpaceA, BC], Spm.Encode("abc", addBos: false));
        // "▁bab": only ab(-5) exists -> ▁ | b | ab.
        Assert.Equal([Space, B, AB], Spm.Encode("bab", addBos: false));
    }

    [Fact]
    public void Equal_scores_merge_leftmost_first()
    {
        // "▁aaa": aa(-1) at positions 1 and 2 tie; leftmost wins -> ▁ | aa | a (rightmost would give ▁a | aa).
        Assert.Equal([Space, AA, A], Spm.Encode("aaa", addBos: false));
    }

    [Fact]
    public void Spaces_become_the_space_mark_and_a_dummy_prefix_is_added()
    {
        Assert.Equal([SpaceA, Space, B], Spm.Encode("a b", addBos: false));
        Assert.Equal([Bos, SpaceA], Spm.Encode("a"));
        Assert.Empty(Spm.Encode("", addBos: false));
    }

    [Fact]
    public void Characters_outside_the_vocabulary_fall_back_to_bytes()
    {
        // 😀 = F0 9F 98 80, 中 = E4 B8 AD.
        Assert.Equal([SpaceA, ByteId(0xF0), ByteId(0x9F), ByteId(0x98), ByteId(0x80)], Spm.Encode("a😀", addBos: false));
        Assert.Equal([Space, ByteId(0xE4), ByteId(0xB8), ByteId(0xAD)], Spm.Encode("中", addBos: false));
        Assert.Equal("a😀", Spm.Decode(Spm.Encode("a😀")));
    }

    [Fact]
    public void Without_byte_tokens_unknown_characters_become_unk()
    {
        var tok = Tokenizer.Create(SentencePiece(byteTokens: false));
        Assert.Equal([SpaceA, Unk, Space, B], tok.Encode("az b", addBos: false));
        Assert.Equal("a\uFFFD b", tok.Decode(tok.Encode("az b")));
    }

    [Fact]
    public void Without_byte_tokens_or_unk_encoding_fails_with_the_character()
    {
        var tok = Tokenizer.Create(SentencePiece(byteTokens: false, unknown: false));
        var e = Assert.Throws<ArgumentException>(() => tok.Encode("az"));
        Assert.Contains("U+007A", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Special_tokens_are_matched_only_when_asked_and_never_merged_into()
    {
        // The fragment after a special token gets its own dummy prefix, as in llama.cpp.
        Assert.Equal([Bos, SpaceA, Eos], Spm.Encode("<s>a</s>", addBos: false));
        int lt = ByteId('<'), s = ByteId('s'), gt = ByteId('>'), slash = ByteId('/');
        Assert.Equal([Space, lt, s, gt, A, lt, slash, s, gt], Spm.Encode("<s>a</s>", addBos: false, parseSpecial: false));
        // "ca" is a UserDefined token: matched literally, never formed from c + a.
        Assert.Equal([UserCA], Spm.Encode("ca", addBos: false));
        Assert.Equal([Space, C, A], Spm.Encode("ca", addBos: false, parseSpecial: false));
    }

    [Fact]
    public void Decode_removes_the_dummy_prefix_and_drops_control_tokens()
    {
        Assert.Equal("abc", Spm.Decode([Bos, SpaceA, BC]));
        Assert.Equal("<s>abc</s>", Spm.Decode([Bos, SpaceA, BC, Eos], renderSpecial: true));
        Assert.Equal("a b", Spm.Decode([SpaceA, Space, B]));
        Assert.Equal(" b", Spm.Decode([Space, Space, B]));
        Assert.Equal("ca", Spm.Decode([UserCA]));
    }

    [Fact]
    public void Token_bytes_are_raw_pieces()
    {
        Assert.Equal(" a"u8.ToArray(), Spm.TokenBytes(SpaceA));
        Assert.Equal(new byte[] { 0xF0 }, Spm.TokenBytes(ByteId(0xF0)));
        Assert.Empty(Spm.TokenBytes(Bos));
        Assert.Equal("<s>"u8.ToArray(), Spm.TokenBytes(Bos, renderSpecial: true));
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Spm.TokenBytes(Spm.VocabSize));
        Assert.Contains("outside the vocabulary", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Invalid_data_is_rejected_with_the_field_name()
    {
        var data = SentencePiece();
        Assert.Contains("Scores", Assert.Throws<ArgumentException>(() => Tokenizer.Create(data with { Scores = [1f] })).Message, StringComparison.Ordinal);
        Assert.Contains("Scores", Assert.Throws<ArgumentException>(() => Tokenizer.Create(data with { Scores = null })).Message, StringComparison.Ordinal);
        Assert.Contains("BosId", Assert.Throws<ArgumentException>(() => Tokenizer.Create(data with { BosId = 100000 })).Message, StringComparison.Ordinal);
        Assert.Contains("Tokens", Assert.Throws<ArgumentException>(() => Tokenizer.Create(data with { Tokens = [], Types = [], Scores = [] })).Message, StringComparison.Ordinal);
    }
}
