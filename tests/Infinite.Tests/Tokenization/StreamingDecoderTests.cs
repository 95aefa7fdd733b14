using System.Text;
using Infinite.Tokenization;

namespace Infinite.Tests.Tokenization;

public class StreamingDecoderTests
{
    private static readonly Tokenizer Spm = Tokenizer.Create(TestVocabularies.SentencePieceText());
    private static readonly Tokenizer Gpt2 = Tokenizer.Create(
        TestVocabularies.ByteLevel(TestVocabularies.HelloWorldMerges, null, "<|endoftext|>"));

    [Fact]
    public void Incomplete_characters_are_held_back()
    {
        var decoder = Gpt2.CreateStreamingDecoder();
        Assert.Equal("a", decoder.Push('a'));
        Assert.Equal("", decoder.Push(0xF0));
        Assert.Equal("", decoder.Push(0x9F));
        Assert.Equal("", decoder.Push(0x98));
        Assert.Equal("😀", decoder.Push(0x80));
        Assert.Equal("", decoder.Flush());
    }

    [Fact]
    public void Flush_replaces_an_unfinished_character()
    {
        var decoder = Gpt2.CreateStreamingDecoder();
        Assert.Equal("", decoder.Push(0xE4));
        Assert.Equal("\uFFFD", decoder.Flush());
    }

    [Fact]
    public void SentencePiece_stream_drops_the_dummy_prefix_like_decode()
    {
        var ids = Spm.Encode("abc abc");
        var decoder = Spm.CreateStreamingDecoder();
        var streamed = string.Concat(ids.Select(decoder.Push)) + decoder.Flush();
        Assert.Equal("abc abc", streamed);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Random_sequences_stream_to_the_same_text_as_decode(bool renderSpecial)
    {
        var random = new Random(12345);
        foreach (var tok in new[] { Spm, Gpt2 })
        {
            for (int trial = 0; trial < 300; trial++)
            {
                var ids = Enumerable.Range(0, random.Next(0, 40)).Select(_ => random.Next(tok.VocabSize)).ToArray();
                var decoder = tok.CreateStreamingDecoder(renderSpecial);
                var streamed = new StringBuilder();
                foreach (int id in ids) streamed.Append(decoder.Push(id));
                streamed.Append(decoder.Flush());
                Assert.Equal(tok.Decode(ids, renderSpecial), streamed.ToString());
            }
        }
    }

    [Fact]
    public void Streaming_bytes_concatenate_to_decode_for_real_text()
    {
        const string text = "naïve 中文 👨‍👩‍👧 done";
        var ids = Gpt2.Encode(text);
        Assert.Equal(Encoding.UTF8.GetBytes(text), ids.SelectMany(id => Gpt2.TokenBytes(id)).ToArray());
        var decoder = Gpt2.CreateStreamingDecoder();
        Assert.Equal(text, string.Concat(ids.Select(decoder.Push)) + decoder.Flush());
    }

    [Fact]
    public void Any_itokenizer_streams_its_token_bytes()
    {
        ITokenizer wrapped = new ForwardingTokenizer(Gpt2);
        var ids = Gpt2.Encode("naïve 中文 👍🏽");
        var decoder = new StreamingDecoder(wrapped);
        Assert.Equal("naïve 中文 👍🏽", string.Concat(ids.Select(decoder.Push)) + decoder.Flush());
    }

    /// <summary>An ITokenizer that is not a <see cref="Tokenizer"/>, to reach the generic streaming path.</summary>
    private sealed class ForwardingTokenizer(Tokenizer inner) : ITokenizer
    {
        public int VocabSize => inner.VocabSize;
        public int BosId => inner.BosId;
        public IReadOnlyList<int> EosIds => inner.EosIds;
        public int[] Encode(string text, bool addBos = true, bool parseSpecial = true) => inner.Encode(text, addBos, parseSpecial);
        public string Decode(ReadOnlySpan<int> ids, bool renderSpecial = false) => inner.Decode(ids, renderSpecial);
        public byte[] TokenBytes(int id, bool renderSpecial = false) => inner.TokenBytes(id, renderSpecial);
    }
}
