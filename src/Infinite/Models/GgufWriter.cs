using System.Buffers.Binary;
using System.Text;

namespace Infinite.Models;

/// <summary>
/// Writes GGUF v3 files. Metadata values use the CLR types <see cref="GgufFile"/> documents (arrays as typed
/// arrays, arrays of arrays as object[]). Tensor bytes are streamed: each tensor's writer is called in order
/// when <see cref="Write"/> reaches its data, so no whole-file buffer is ever built.
/// </summary>
public sealed class GgufWriter
{
    private readonly List<(string Key, object Value)> _metadata = [];
    private readonly List<(TensorInfo Info, Action<Stream> WriteData)> _tensors = [];
    private readonly HashSet<string> _keys = new(StringComparer.Ordinal);

    public int Alignment { get; }

    public GgufWriter(int alignment = 32)
    {
        if (alignment <= 0 || (alignment & (alignment - 1)) != 0)
            throw new ArgumentOutOfRangeException(nameof(alignment), alignment, "alignment must be a power of two");
        Alignment = alignment;
        if (alignment != 32) Add("general.alignment", (uint)alignment);
    }

    /// <summary>Adds one metadata entry; the value's CLR type picks the GGUF type.</summary>
    public GgufWriter Add(string key, object value)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        ArgumentNullException.ThrowIfNull(value);
        TypeOf(value, key);
        if (!_keys.Add(key)) throw new ArgumentException($"metadata key '{key}' added twice", nameof(key));
        _metadata.Add((key, value));
        return this;
    }

    /// <summary>Adds a tensor (shape outermost first); <paramref name="writeData"/> must write exactly its bytes.</summary>
    public GgufWriter AddTensor(string name, TensorType type, long[] shape, Action<Stream> writeData)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (shape.Length is 0 or > 4 || shape.Any(d => d <= 0))
            throw new ArgumentException($"tensor '{name}': shape [{string.Join(", ", shape)}] must have 1 to 4 positive dimensions", nameof(shape));
        if (type == TensorType.Q8_0 && shape[^1] % TensorEncoding.Q8BlockSize != 0)
            throw new ArgumentException($"tensor '{name}': Q8_0 needs an innermost dimension that is a multiple of 32, got {shape[^1]}", nameof(shape));
        if (_tensors.Any(t => t.Info.Name == name)) throw new ArgumentException($"tensor '{name}' added twice", nameof(name));
        long elements = shape.Aggregate(1L, (a, b) => checked(a * b));
        _tensors.Add((new TensorInfo(name, type, (long[])shape.Clone(), 0, 0, TensorEncoding.ByteCount(type, elements)), writeData));
        return this;
    }

    public void Write(string path)
    {
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        Write(stream);
    }

    public void Write(Stream stream)
    {
        var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
        w.Write(GgufReader.Magic);
        w.Write(3u);
        w.Write((ulong)_tensors.Count);
        w.Write((ulong)_metadata.Count);
        foreach (var (key, value) in _metadata)
        {
            WriteString(w, key);
            var type = TypeOf(value, key);
            w.Write((uint)type);
            WriteValue(w, type, value);
        }
        long offset = 0;
        foreach (var (info, _) in _tensors)
        {
            WriteString(w, info.Name);
            w.Write((uint)info.Shape.Length);
            for (int d = info.Shape.Length - 1; d >= 0; d--) w.Write((ulong)info.Shape[d]);
            w.Write(GgmlTypes.FromTensorType(info.Type));
            w.Write((ulong)offset);
            offset = Align(offset + info.Bytes);
        }
        w.Flush();
        Pad(stream);
        for (int i = 0; i < _tensors.Count; i++)
        {
            var (info, writeData) = _tensors[i];
            long begin = stream.Position;
            writeData(stream);
            long written = stream.Position - begin;
            if (written != info.Bytes)
                throw new InvalidOperationException($"tensor '{info.Name}': its writer wrote {written} bytes, {info.Bytes} expected");
            if (i < _tensors.Count - 1) Pad(stream);
        }
        stream.Flush();
    }

    private long Align(long n) => (n + Alignment - 1) / Alignment * Alignment;

    private void Pad(Stream stream)
    {
        long pad = Align(stream.Position) - stream.Position;
        for (long i = 0; i < pad; i++) stream.WriteByte(0);
    }

    private static void WriteString(BinaryWriter w, string s)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
    }

    private static GgufValueType TypeOf(object value, string key) => value switch
    {
        byte => GgufValueType.UInt8,
        sbyte => GgufValueType.Int8,
        ushort => GgufValueType.UInt16,
        short => GgufValueType.Int16,
        uint => GgufValueType.UInt32,
        int => GgufValueType.Int32,
        float => GgufValueType.Float32,
        bool => GgufValueType.Bool,
        string => GgufValueType.String,
        ulong => GgufValueType.UInt64,
        long => GgufValueType.Int64,
        double => GgufValueType.Float64,
        Array a => CheckArray(a, key),
        _ => throw new ArgumentException($"metadata '{key}': values of type {value.GetType().Name} cannot be stored in GGUF", nameof(value)),
    };

    private static GgufValueType CheckArray(Array a, string key)
    {
        if (a.Rank != 1) throw new ArgumentException($"metadata '{key}': only one-dimensional arrays can be stored", nameof(key));
        var elementType = ElementTypeOf(a, key);
        if (elementType == GgufValueType.Array)
            foreach (object? item in a)
                if (item is not Array inner) throw new ArgumentException($"metadata '{key}': an array of arrays holds a {item?.GetType().Name ?? "null"}", nameof(key));
                else CheckArray(inner, key);
        return GgufValueType.Array;
    }

    private static GgufValueType ElementTypeOf(Array a, string key)
    {
        var t = a.GetType().GetElementType()!;
        if (t == typeof(object) || t.IsArray) return GgufValueType.Array;
        return Type.GetTypeCode(t) switch
        {
            TypeCode.Byte => GgufValueType.UInt8,
            TypeCode.SByte => GgufValueType.Int8,
            TypeCode.UInt16 => GgufValueType.UInt16,
            TypeCode.Int16 => GgufValueType.Int16,
            TypeCode.UInt32 => GgufValueType.UInt32,
            TypeCode.Int32 => GgufValueType.Int32,
            TypeCode.Single => GgufValueType.Float32,
            TypeCode.Boolean => GgufValueType.Bool,
            TypeCode.String => GgufValueType.String,
            TypeCode.UInt64 => GgufValueType.UInt64,
            TypeCode.Int64 => GgufValueType.Int64,
            TypeCode.Double => GgufValueType.Float64,
            _ => throw new ArgumentException($"metadata '{key}': arrays of {t.Name} cannot be stored in GGUF", nameof(key)),
        };
    }

    private static void WriteValue(BinaryWriter w, GgufValueType type, object value)
    {
        switch (type)
        {
            case GgufValueType.UInt8: w.Write((byte)value); break;
            case GgufValueType.Int8: w.Write((sbyte)value); break;
            case GgufValueType.UInt16: w.Write((ushort)value); break;
            case GgufValueType.Int16: w.Write((short)value); break;
            case GgufValueType.UInt32: w.Write((uint)value); break;
            case GgufValueType.Int32: w.Write((int)value); break;
            case GgufValueType.Float32: w.Write((float)value); break;
            case GgufValueType.Bool: w.Write((bool)value ? (byte)1 : (byte)0); break;
            case GgufValueType.String: WriteString(w, (string)value); break;
            case GgufValueType.UInt64: w.Write((ulong)value); break;
            case GgufValueType.Int64: w.Write((long)value); break;
            case GgufValueType.Float64: w.Write((double)value); break;
            case GgufValueType.Array:
                var a = (Array)value;
                var elementType = ElementTypeOf(a, "");
                w.Write((uint)elementType);
                w.Write((ulong)a.Length);
                foreach (object? item in a)
                {
                    WriteValue(w, elementType, item!);
                }
                break;
        }
    }
}
