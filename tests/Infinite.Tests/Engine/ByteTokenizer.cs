using System.Text;
using Infinite.Tokenization;

namespace Infinite.Tests.Engine;

/// <summary>Byte-level tokenizer for engine tests: ids 0..255 are bytes, 256 is BOS, 257 is EOS.</summary>
internal sealed class ByteTokenizer : ITokenizer
{
    public const int Bos = 256;
    public const int Eos = 257;

    public int VocabSize => 258;
    public int BosId => Bos;
    public IReadOnlyList<int> EosIds { get; } = [Eos];

    public int[] Encode(string text, bool addBos = true, bool parseSpecial = true)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        var ids = new List<int>(bytes.Length + 1);
        if (addBos)
            ids.Add(Bos);
        foreach (byte b in bytes)
            ids.Add(b);
        return [.. ids];
    }

    public string Decode(ReadOnlySpan<int> ids, bool renderSpecial = false)
    {
        var bytes = new List<byte>();
        foreach (int id in ids)
        {
            if (id < 256)
                bytes.Add((byte)id);
        }
        return Encoding.UTF8.GetString([.. bytes]);
    }

    public byte[] TokenBytes(int id, bool renderSpecial = false) => id is >= 0 and < 256 ? [(byte)id] : [];
}
