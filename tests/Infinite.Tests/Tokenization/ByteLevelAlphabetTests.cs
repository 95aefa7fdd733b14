using Infinite.Tokenization;

namespace Infinite.Tests.Tokenization;

public class ByteLevelAlphabetTests
{
    [Theory]
    [InlineData(0x20, '\u0120')] // space -> Ġ
    [InlineData(0x0A, '\u010A')] // newline -> Ċ
    [InlineData(0x00, '\u0100')] // first unprintable byte
    [InlineData(0x21, '!')]      // printable ASCII maps to itself
    [InlineData(0x7F, '\u0121')] // DEL comes after the 33 bytes 0x00..0x20
    [InlineData(0xAD, '\u0143')] // soft hyphen is the last remapped byte (68th)
    [InlineData(0xFF, '\u00FF')]
    public void Known_points(int value, char expected)
    {
        Assert.Equal(expected, ByteLevelAlphabet.ToChar((byte)value));
        Assert.True(ByteLevelAlphabet.TryToByte(expected, out byte back));
        Assert.Equal(value, back);
    }

    [Fact]
    public void Table_is_a_bijection_onto_256_characters()
    {
        var chars = Enumerable.Range(0, 256).Select(b => ByteLevelAlphabet.ToChar((byte)b)).ToHashSet();
        Assert.Equal(256, chars.Count);
        Assert.False(ByteLevelAlphabet.TryToByte('\u0144', out _));
    }
}
