using System.Text;
using Infinite.Tokenization;

namespace Infinite.Engine;

/// <summary>
/// Turns a stream of token byte pieces into text. A token may end inside a multi-byte UTF-8 character; those trailing
/// bytes are held back until the character completes, so streamed text never contains a split character.
/// </summary>
public sealed class Utf8StreamDecoder
{
    private readonly ITokenizer _tokenizer;
    private byte[] _buffer = new byte[16];
    private int _count;

    public Utf8StreamDecoder(ITokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        _tokenizer = tokenizer;
    }

    /// <summary>Text completed by this token (possibly empty).</summary>
    public string Append(int tokenId) => Append(_tokenizer.TokenBytes(tokenId));

    /// <summary>Text completed by these bytes (possibly empty).</summary>
    public string Append(ReadOnlySpan<byte> bytes)
    {
        if (_count + bytes.Length > _buffer.Length)
            Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, _count + bytes.Length));
        bytes.CopyTo(_buffer.AsSpan(_count));
        _count += bytes.Length;
        int complete = CompletePrefixLength(_buffer.AsSpan(0, _count));
        string text = Encoding.UTF8.GetString(_buffer, 0, complete);
        _buffer.AsSpan(complete, _count - complete).CopyTo(_buffer);
        _count -= complete;
        return text;
    }

    /// <summary>Ends the stream: held bytes that never completed a character become U+FFFD.</summary>
    public string Flush()
    {
        string text = Encoding.UTF8.GetString(_buffer, 0, _count);
        _count = 0;
        return text;
    }

    /// <summary>Length of the prefix that does not end in an unfinished UTF-8 sequence.</summary>
    internal static int CompletePrefixLength(ReadOnlySpan<byte> bytes)
    {
        // A sequence is at most 4 bytes, so only a lead byte among the last 3 can be unfinished.
        for (int back = 1; back <= Math.Min(3, bytes.Length); back++)
        {
            byte b = bytes[^back];
            if ((b & 0xC0) == 0x80)
                continue;
            int length = b switch
            {
                >= 0xC2 and < 0xE0 => 2,
                >= 0xE0 and < 0xF0 => 3,
                >= 0xF0 and < 0xF5 => 4,
                _ => 1, // ASCII, or a byte that can never start a sequence (decoded to U+FFFD now)
            };
            return length > back ? bytes.Length - back : bytes.Length;
        }
        return bytes.Length;
    }
}
