using Infinite.Engine;

namespace Infinite.Tests.Engine;

public sealed class Utf8StreamDecoderTests
{
    private readonly Utf8StreamDecoder _decoder = new(new ByteTokenizer());

    [Fact]
    public void SplitCharacters_AreHeldUntilComplete()
    {
        Assert.Equal("a", _decoder.Append([(byte)'a', 0xC3]));
        Assert.Equal("é", _decoder.Append([0xA9]));
        Assert.Equal("", _decoder.Append([0xF0, 0x9F]));
        Assert.Equal("", _decoder.Append([0x99]));
        Assert.Equal("🙂b", _decoder.Append([0x82, (byte)'b']));
        Assert.Equal("", _decoder.Flush());
    }

    [Fact]
    public void TokenIds_AreDecodedThroughTheTokenizer()
    {
        Assert.Equal("", _decoder.Append(0xE2));
        Assert.Equal("", _decoder.Append(0x82));
        Assert.Equal("€", _decoder.Append(0xAC));
        Assert.Equal("", _decoder.Append(ByteTokenizer.Eos));
    }

    [Fact]
    public void InvalidBytes_BecomeReplacementCharacters()
    {
        Assert.Equal("\uFFFD", _decoder.Append([0xFF]));
        Assert.Equal("x", _decoder.Append([(byte)'x', 0xE2, 0x82]));
        Assert.Equal("\uFFFD", _decoder.Flush());
    }
}
