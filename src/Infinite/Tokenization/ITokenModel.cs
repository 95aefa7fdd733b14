namespace Infinite.Tokenization;

/// <summary>One tokenizer algorithm: encodes text between special tokens and gives the bytes of its pieces.</summary>
internal interface ITokenModel
{
    /// <summary>SentencePiece adds a space at the start of each fragment; decoding removes it again.</summary>
    bool AddsDummyPrefix { get; }

    /// <summary>Appends the ids of <paramref name="fragment"/> (text containing no special token).</summary>
    void Encode(string fragment, bool startsFragment, List<int> output);

    /// <summary>The bytes of a Normal or Byte token.</summary>
    byte[] PieceBytes(int id);
}
