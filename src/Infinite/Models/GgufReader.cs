namespace Infinite.Models;

/// <summary>Parses GGUF v2/v3 headers from mapped bytes, checking every length, count and offset against
/// the file size before it is used.</summary>
internal static unsafe class GgufReader
{
    public const uint Magic = 0x46554747;   // "GGUF" read little-endian
    private const int MaxDims = 4;          // GGML_MAX_DIMS
    private const int MaxArrayDepth = 8;
    private const long MaxArrayLength = 1 << 28;   // far above any vocabulary, far below what an array can hold

    public static GgufFile Read(byte* data, long length, string path)
    {
        string file = System.IO.Path.GetFileName(path);
        var r = new BoundedReader(data, length, path);
        if (length < 24)
            throw ModelFormatException.In(path, $"file is {length} bytes, too short for a GGUF header (24 bytes)");
        uint magic = r.U32("magic");
        if (magic != Magic)
            throw r.Error(0, $"not a GGUF file: magic is 0x{magic:X8}, expected 0x{Magic:X8} (\"GGUF\")");
        uint version = r.U32("version");
        if (version is not (2 or 3))
            throw r.Error(4, $"GGUF version {version} is not supported (2 and 3 are)");
        // Each tensor info takes at least 8 (name length) + 4 + 8 + 4 + 8 bytes; each KV at least 8 + 4 + 1.
        long tensorCount = r.Count("tensors", 32);
        long kvCount = r.Count("metadata entries", 13);

        var metadata = new Dictionary<string, object>(StringComparer.Ordinal);
        for (long i = 0; i < kvCount; i++)
        {
            long at = r.Position;
            string key = r.String($"key of metadata entry {i}", 1 << 16);
            var type = (GgufValueType)r.U32($"type of metadata '{key}'");
            object value = ReadValue(ref r, type, $"metadata '{key}'", 0);
            if (!metadata.TryAdd(key, value))
                throw r.Error(at, $"metadata key '{key}' appears twice");
        }

        int alignment = 32;
        if (metadata.TryGetValue("general.alignment", out var alignValue))
        {
            if (alignValue is not uint a || a == 0 || (a & (a - 1)) != 0 || a > (1u << 20))
                throw ModelFormatException.In(path, $"general.alignment must be a power of two uint32 up to 1 MiB, got {alignValue} ({alignValue.GetType().Name})");
            alignment = (int)a;
        }

        var raw = new List<(string Name, TensorType Type, long[] Shape, ulong Offset, long Bytes, long At)>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (long i = 0; i < tensorCount; i++)
        {
            long at = r.Position;
            string name = r.String($"name of tensor {i}", 1 << 16);
            if (!names.Add(name)) throw r.Error(at, $"tensor '{name}' appears twice");
            uint nDims = r.U32($"dimension count of tensor '{name}'");
            if (nDims is 0 or > MaxDims)
                throw r.Error(r.Position - 4, $"tensor '{name}' has {nDims} dimensions (1 to {MaxDims} allowed)");
            var shape = new long[nDims];
            long elements = 1;
            for (int d = 0; d < nDims; d++)
            {
                ulong ne = r.U64($"dimension {d} of tensor '{name}'");
                // The product is bounded by the file size, so it can never overflow.
                if (ne == 0 || ne > (ulong)length / (ulong)elements)
                    throw r.Error(r.Position - 8, $"tensor '{name}' dimension {d} is {ne}, impossible for a file of {length} bytes");
                shape[nDims - 1 - d] = (long)ne;   // GGUF lists ne innermost first; TensorInfo is outermost first
                elements *= (long)ne;
            }
            uint typeId = r.U32($"type of tensor '{name}'");
            var type = GgmlTypes.ToTensorType(typeId)
                ?? throw r.Error(r.Position - 4, $"tensor '{name}' has type {GgmlTypes.Name(typeId)} ({typeId}); Infinite reads F32, F16, BF16 and Q8_0");
            if (type == TensorType.Q8_0 && shape[^1] % TensorEncoding.Q8BlockSize != 0)
                throw r.Error(at, $"tensor '{name}' is Q8_0 but its innermost dimension {shape[^1]} is not a multiple of {TensorEncoding.Q8BlockSize}");
            ulong offset = r.U64($"data offset of tensor '{name}'");
            if (offset % (ulong)alignment != 0)
                throw r.Error(r.Position - 8, $"tensor '{name}' data offset {offset} is not a multiple of the alignment {alignment}");
            raw.Add((name, type, shape, offset, TensorEncoding.ByteCount(type, elements), at));
        }

        long dataOffset = (r.Position + alignment - 1) / alignment * alignment;
        if (raw.Count > 0 && dataOffset > length)
            throw r.Error($"the data section would start at byte {dataOffset}, past the end of the file ({length} bytes)");
        var tensors = new List<TensorInfo>(raw.Count);
        foreach (var t in raw)
        {
            ulong begin = (ulong)dataOffset + t.Offset;
            if (t.Offset > (ulong)length || begin + (ulong)t.Bytes > (ulong)length)
                throw r.Error(t.At, $"tensor '{t.Name}' data [{begin}, {begin + (ulong)t.Bytes}) runs past the end of the file ({length} bytes)");
            tensors.Add(new TensorInfo(t.Name, t.Type, t.Shape, 0, (long)begin, t.Bytes));
        }
        return new GgufFile(path, version, metadata, tensors, alignment, dataOffset, length);
    }

    private static object ReadValue(ref BoundedReader r, GgufValueType type, string what, int depth) => type switch
    {
        GgufValueType.UInt8 => r.U8(what),
        GgufValueType.Int8 => (sbyte)r.U8(what),
        GgufValueType.UInt16 => r.U16(what),
        GgufValueType.Int16 => (short)r.U16(what),
        GgufValueType.UInt32 => r.U32(what),
        GgufValueType.Int32 => (int)r.U32(what),
        GgufValueType.Float32 => r.F32(what),
        GgufValueType.Bool => ReadBool(ref r, what),
        GgufValueType.String => r.String(what),
        GgufValueType.UInt64 => r.U64(what),
        GgufValueType.Int64 => (long)r.U64(what),
        GgufValueType.Float64 => r.F64(what),
        GgufValueType.Array => ReadArray(ref r, what, depth),
        _ => throw r.Error(r.Position - 4, $"{what} has unknown value type {(uint)type}"),
    };

    private static bool ReadBool(ref BoundedReader r, string what)
    {
        byte b = r.U8(what);
        return b switch { 0 => false, 1 => true, _ => throw r.Error(r.Position - 1, $"{what} is a bool with byte value {b}") };
    }

    private static object ReadArray(ref BoundedReader r, string what, int depth)
    {
        if (depth >= MaxArrayDepth) throw r.Error($"{what} nests arrays deeper than {MaxArrayDepth}");
        var elementType = (GgufValueType)r.U32($"element type of {what}");
        int minBytes = elementType switch
        {
            GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool => 1,
            GgufValueType.UInt16 or GgufValueType.Int16 => 2,
            GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32 => 4,
            GgufValueType.UInt64 or GgufValueType.Int64 or GgufValueType.Float64 or GgufValueType.String => 8,
            GgufValueType.Array => 12,
            _ => throw r.Error(r.Position - 4, $"{what} is an array of unknown value type {(uint)elementType}"),
        };
        long n = r.Count(what, minBytes);
        if (n > MaxArrayLength) throw r.Error(r.Position - 8, $"{what}: count {n} exceeds the limit of {MaxArrayLength} elements");
        string item = $"{what} element";
        switch (elementType)
        {
            case GgufValueType.UInt8: return Fill(ref r, n, (ref BoundedReader x) => x.U8(item));
            case GgufValueType.Int8: return Fill(ref r, n, (ref BoundedReader x) => (sbyte)x.U8(item));
            case GgufValueType.Bool: return Fill(ref r, n, (ref BoundedReader x) => ReadBool(ref x, item));
            case GgufValueType.UInt16: return Fill(ref r, n, (ref BoundedReader x) => x.U16(item));
            case GgufValueType.Int16: return Fill(ref r, n, (ref BoundedReader x) => (short)x.U16(item));
            case GgufValueType.UInt32: return Fill(ref r, n, (ref BoundedReader x) => x.U32(item));
            case GgufValueType.Int32: return Fill(ref r, n, (ref BoundedReader x) => (int)x.U32(item));
            case GgufValueType.Float32: return Fill(ref r, n, (ref BoundedReader x) => x.F32(item));
            case GgufValueType.UInt64: return Fill(ref r, n, (ref BoundedReader x) => x.U64(item));
            case GgufValueType.Int64: return Fill(ref r, n, (ref BoundedReader x) => (long)x.U64(item));
            case GgufValueType.Float64: return Fill(ref r, n, (ref BoundedReader x) => x.F64(item));
            case GgufValueType.String: return Fill(ref r, n, (ref BoundedReader x) => x.String(item));
            default: return Fill(ref r, n, (ref BoundedReader x) => ReadArray(ref x, item, depth + 1));
        }
    }

    private delegate T ElementReader<T>(ref BoundedReader r);

    private static T[] Fill<T>(ref BoundedReader r, long n, ElementReader<T> read)
    {
        var values = new T[n];
        for (long i = 0; i < n; i++) values[i] = read(ref r);
        return values;
    }
}
