namespace Infinite.Models;

/// <summary>
/// The parsed header of a GGUF file. Metadata values are CLR values of the stored type (byte, sbyte, ushort,
/// short, uint, int, float, bool, string, ulong, long, double); arrays are typed arrays (int[], string[], ...)
/// and arrays of arrays are object[]. Tensor offsets are absolute (data section offset already added).
/// </summary>
public sealed record GgufFile(
    string Path,
    uint Version,
    IReadOnlyDictionary<string, object> Metadata,
    IReadOnlyList<TensorInfo> Tensors,
    int Alignment,
    long DataOffset,
    long Length)
{
    /// <summary>Reads and checks the header of <paramref name="path"/> (tensor data is not read).</summary>
    public static unsafe GgufFile Read(string path)
    {
        using var map = new MappedFile(path);
        return GgufReader.Read(map.Base, map.Length, path);
    }
}
