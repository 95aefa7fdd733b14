using Infinite.Tokenization;

namespace Infinite.Tests.Tokenization;

public class RoundTripTests
{
    public static TheoryData<string> Texts() =>
    [
        "Hello, world!",
        "  leading and trailing spaces  ",
        "tabs\tand\nnew lines\r\n",
        "café naïve Ærøskøbing",
        "e\u0301 a\u0308\u0323 combining marks",
        "中文字符和日本語のテキスト",
        "👨‍👩‍👧‍👦 family, 👍🏽 thumbs, 🏳️‍🌈 flag",
        "שלום עולם مرحبا بالعالم",
        "\u0000",
        "nul\u0000inside",
        "<s> looks special </s>",
    ];

    private static readonly Tokenizer Spm = Tokenizer.Create(TestVocabularies.SentencePieceText());
    private static readonly Tokenizer Gpt2 = Tokenizer.Create(TestVocabularies.ByteLevel(TestVocabularies.HelloWorldMerges));
    private static readonly Tokenizer Llama3 = Tokenizer.Create(
        TestVocabularies.ByteLevel(TestVocabularies.HelloWorldMerges, "llama-bpe", "<|begin_of_text|>", "<|eot_id|>"));

    [Theory]
    [MemberData(nameof(Texts))]
    public void Decode_inverts_encode(string text)
    {
        foreach (var tok in new[] { Spm, Gpt2, Llama3 })
        {
            Assert.Equal(text, tok.Decode(tok.Encode(text, addBos: false), renderSpecial: true));
            Assert.Equal(text, tok.Decode(tok.Encode(text, addBos: true, parseSpecial: false)));
        }
    }

    [Fact]
    public void Special_tokens_round_trip_when_rendered()
    {
        const string text = "<|begin_of_text|>hi<|eot_id|> there";
        Assert.Equal(text, Llama3.Decode(Llama3.Encode(text, addBos: false), renderSpecial: true));
        Assert.Equal("hi there", Llama3.Decode(Llama3.Encode(text, addBos: false)));
        // SentencePiece: the dummy prefix added after </s> is removed again on decode.
        Assert.Equal("<s>a</s>b", Spm.Decode(Spm.Encode("a</s>b"), renderSpecial: true));
    }

    [Fact]
    public void Lone_surrogates_become_replacement_characters()
    {
        // UTF-8 cannot spell a lone surrogate, so Encode reads each as U+FFFD.
        foreach (var tok in new[] { Spm, Gpt2 })
        {
            Assert.Equal("a\uFFFDb\uFFFD", tok.Decode(tok.Encode("a\uD800b\uDC00")));
            Assert.Equal("\uFFFD😀", tok.Decode(tok.Encode("\uDC00😀")));
        }
    }
}
