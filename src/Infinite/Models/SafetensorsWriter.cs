using System.Buffers.Binary;
using System.Text.Json;

namespace Infinite.Models;

/// <summary>Writes one safetensors file: an 8-byte header length, the JSON header padded with spaces to 8
/// bytes, then the tensors' bytes. Each tensor's writer is called in order, so data is streamed.</summary>
public sealed class SafetensorsWriter
{
    private readonly List<(SafetensorsEntry Entry, Action<Stream> WriteData)> _tensors = [];
    private readonly Dictionary<string, string> _metadata = new(StringComparer.Ordinal) { ["format"] = "pt" };
    private long _size;

    /// <summary>Bytes of tensor data added so far.</summary>
    public long DataBytes => _size;

    public SafetensorsWriter AddMetadata(string key, string value)
    {
        _metadata[key] = value;
        return this;
    }

    /// <summary>Adds a tensor (Hugging Face name, shape outermost first); F32, F16 or BF16 only.</summary>
    public SafetensorsWriter AddTensor(string name, TensorType type, long[] shape, Action<Stream> writeData)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (type is not (TensorType.F32 or TensorType.F16 or TensorType.BF16))
            throw new ArgumentException($"tensor '{name}': safetensors holds F32, F16 or BF16, not {type}", nameof(type));
        if (name == "__metadata__" || _tensors.Any(t => t.Entry.Name == name))
            throw new ArgumentException($"tensor '{name}' added twice or reserved", nameof(name));
        if (shape.Any(d => d < 0)) throw new ArgumentException($"tensor '{name}': negative dimension", nameof(shape));
        long bytes = TensorEncoding.ByteCount(type, shape.Aggregate(1L, (a, b) => checked(a * b)));
        _tensors.Add((new SafetensorsEntry(name, type, (long[])shape.Clone(), _size, bytes), writeData));
        _size += bytes;
        return this;
    }

    public void Write(string path)
    {
        var header = new MemoryStream();
        using (var j = new Utf8JsonWriter(header))
        {
            j.WriteStartObject();
            j.WriteStartObject("__metadata__");
            foreach (var (k, v) in _metadata) j.WriteString(k, v);
            j.WriteEndObject();
            foreach (var (e, _) in _tensors)
            {
                j.WriteStartObject(e.Name);
                j.WriteString("dtype", e.Type.ToString());
                j.WriteStartArray("shape");
                foreach (long d in e.Shape) j.WriteNumberValue(d);
                j.WriteEndArray();
                j.WriteStartArray("data_offsets");
                j.WriteNumberValue(e.Offset);
                j.WriteNumberValue(e.Offset + e.Bytes);
                j.WriteEndArray();
                j.WriteEndObject();
            }
            j.WriteEndObject();
        }
        while (header.Length % 8 != 0) header.WriteByte((byte)' ');   // tensor data starts 8-byte aligned
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
        stream.Write(length);
        header.Position = 0;
        header.CopyTo(stream);
        foreach (var (e, writeData) in _tensors)
        {
            long begin = stream.Position;
            writeData(stream);
            if (stream.Position - begin != e.Bytes)
                throw new InvalidOperationException($"tensor '{e.Name}': its writer wrote {stream.Position - begin} bytes, {e.Bytes} expected");
        }
    }
}
