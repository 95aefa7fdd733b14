using System.Buffers.Binary;
using System.Text;

namespace Infinite.Models;

/// <summary>Little-endian reads over mapped bytes where every read is checked against the end first, so a
/// hostile length or count becomes a <see cref="ModelFormatException"/> naming the file and offset.</summary>
internal unsafe struct BoundedReader
{
    private readonly byte* _data;
    private readonly string _file;

    public long Length { get; }
    public long Position { get; set; }

    public BoundedReader(byte* data, long length, string file)
    {
        _data = data;
        Length = length;
        _file = file;
    }

    public readonly long Remaining => Length - Position;

    public readonly ModelFormatException Error(string what) => ModelFormatException.At(_file, Position, what);

    public readonly ModelFormatException Error(long offset, string what) => ModelFormatException.At(_file, offset, what);

    private ReadOnlySpan<byte> Take(int n, string what)
    {
        if (n > Remaining)
            throw Error($"{what} ({n} bytes) runs past the end of the file ({Length} bytes)");
        var span = new ReadOnlySpan<byte>(_data + Position, n);
        Position += n;
        return span;
    }

    public byte U8(string what) => Take(1, what)[0];
    public ushort U16(string what) => BinaryPrimitives.ReadUInt16LittleEndian(Take(2, what));
    public uint U32(string what) => BinaryPrimitives.ReadUInt32LittleEndian(Take(4, what));
    public ulong U64(string what) => BinaryPrimitives.ReadUInt64LittleEndian(Take(8, what));
    public float F32(string what) => BinaryPrimitives.ReadSingleLittleEndian(Take(4, what));
    public double F64(string what) => BinaryPrimitives.ReadDoubleLittleEndian(Take(8, what));

    /// <summary>A u64-length-prefixed UTF-8 string; the length is checked against the file and a cap.</summary>
    public string String(string what, long maxBytes = 64L << 20)
    {
        long at = Position;
        ulong n = U64($"length of {what}");
        if (n > (ulong)Remaining)
            throw Error(at, $"{what}: string length {n} exceeds the file ({Length} bytes)");
        if (n > (ulong)maxBytes)
            throw Error(at, $"{what}: string length {n} exceeds the limit of {maxBytes} bytes");
        return Encoding.UTF8.GetString(Take((int)n, what));
    }

    /// <summary>A u64 element count, checked so that count * minimum element size fits in the rest of the file.</summary>
    public long Count(string what, int minElementBytes)
    {
        long at = Position;
        ulong n = U64($"count of {what}");
        if (n > (ulong)(Remaining / Math.Max(1, minElementBytes)))
            throw Error(at, $"{what}: count {n} exceeds the file ({Length} bytes)");
        return (long)n;
    }
}
