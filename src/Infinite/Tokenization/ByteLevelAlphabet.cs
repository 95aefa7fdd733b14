namespace Infinite.Tokenization;

/// <summary>
/// GPT-2's reversible byte-to-character table: printable Latin-1 bytes map to themselves, the other 68 bytes to
/// U+0100 onwards in byte order, so every byte string becomes a string of visible characters (space is 'Ġ').
/// </summary>
public static class ByteLevelAlphabet
{
    private static readonly char[] ByteToChar = BuildTable();
    private static readonly Dictionary<char, byte> CharToByte =
        Enumerable.Range(0, 256).ToDictionary(b => ByteToChar[b], b => (byte)b);

    public static char ToChar(byte value) => ByteToChar[value];

    /// <summary>The byte a table character stands for; false for characters outside the table.</summary>
    public static bool TryToByte(char c, out byte value) => CharToByte.TryGetValue(c, out value);

    public static string Encode(ReadOnlySpan<byte> bytes)
    {
        var chars = new char[bytes.Length];
        for (int i = 0; i < bytes.Length; i++) chars[i] = ByteToChar[bytes[i]];
        return new string(chars);
    }

    private static char[] BuildTable()
    {
        var table = new char[256];
        int extra = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            table[b] = printable ? (char)b : (char)(256 + extra++);
        }
        return table;
    }
}
