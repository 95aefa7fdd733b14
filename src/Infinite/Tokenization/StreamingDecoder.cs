using System.Text;

namespace Infinite.Tokenization;

/// <summary>
/// Per-request incremental detokenizer: each token's bytes go through a stateful UTF-8 decoder that holds back
/// an incomplete multi-byte character until its last byte arrives, so the pieces returned by <see cref="Push"/>
/// and <see cref="Flush"/> concatenate to exactly <see cref="ITokenizer.Decode"/> of all ids. Not thread-safe
/// (one per request). For a tokenizer other than <see cref="Tokenizer"/> it streams <see cref="ITokenizer.TokenBytes"/>,
/// which knows no context rule such as SentencePiece's removed leading space.
/// </summary>
public sealed class StreamingDecoder
{
    private readonly ITokenizer tokenizer;
    private readonly bool renderSpecial;
    private readonly Decoder utf8 = new UTF8Encoding(false, false).GetDecoder();
    private bool stripSpace;

    public StreamingDecoder(ITokenizer tokenizer, bool renderSpecial = false)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        this.tokenizer = tokenizer;
        this.renderSpecial = renderSpecial;
        stripSpace = tokenizer is Tokenizer own && own.AddsDummyPrefix;
    }

    /// <summary>Adds one token; returns the text that became complete (possibly empty).</summary>
    public string Push(int id) => Convert(
        tokenizer is Tokenizer own ? own.DecodePiece(id, renderSpecial, ref stripSpace) : tokenizer.TokenBytes(id, renderSpecial),
        flush: false);

    /// <summary>Ends the stream: bytes of an unfinished character become U+FFFD.</summary>
    public string Flush() => Convert([], flush: true);

    private string Convert(ReadOnlySpan<byte> bytes, bool flush)
    {
        // GetCharCount leaves the decoder's state alone; GetChars then consumes the bytes (even when no char is
        // complete yet, so a held-back lead byte is remembered).
        var chars = new char[utf8.GetCharCount(bytes, flush)];
        int written = utf8.GetChars(bytes, chars, flush);
        return new string(chars, 0, written);
    }
}
