using System.Buffers.Binary;
using System.Text.Json;

namespace Infinite.Models;

/// <summary>The parsed header of a safetensors file: an 8-byte little-endian length, then a JSON object of
/// {name: {dtype, shape, data_offsets}} and an optional "__metadata__" map of strings.</summary>
public sealed record SafetensorsHeader(IReadOnlyList<SafetensorsEntry> Tensors, IReadOnlyDictionary<string, string> Metadata)
{
    private const long MaxHeaderBytes = 100L << 20;

    public static unsafe SafetensorsHeader Read(string path)
    {
        using var map = new MappedFile(path);
        return Parse(map.Base, map.Length, path);
    }

    internal static unsafe SafetensorsHeader Parse(byte* data, long length, string path)
    {
        if (length < 8) throw ModelFormatException.At(path, 0, $"file is {length} bytes, too short for a safetensors header length (8 bytes)");
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(new ReadOnlySpan<byte>(data, 8));
        if (n > (ulong)(length - 8))
            throw ModelFormatException.At(path, 0, $"header length {n} exceeds the file ({length} bytes)");
        if (n > MaxHeaderBytes)
            throw ModelFormatException.At(path, 0, $"header length {n} exceeds the limit of {MaxHeaderBytes} bytes");
        long dataStart = 8 + (long)n;
        var json = new ReadOnlySpan<byte>(data + 8, (int)n);
        if (!System.Text.Unicode.Utf8.IsValid(json)) throw ModelFormatException.At(path, 8, "header is not valid UTF-8");
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json.ToArray()); }
        catch (JsonException e) { throw ModelFormatException.At(path, 8, $"header is not valid JSON: {e.Message}"); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw ModelFormatException.At(path, 8, "header is not a JSON object");
            var tensors = new List<SafetensorsEntry>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if (p.Name == "__metadata__")
                {
                    if (p.Value.ValueKind != JsonValueKind.Object) throw ModelFormatException.At(path, 8, "__metadata__ is not an object");
                    foreach (var kv in p.Value.EnumerateObject())
                        metadata[kv.Name] = kv.Value.ValueKind == JsonValueKind.String ? kv.Value.GetString()! : kv.Value.GetRawText();
                    continue;
                }
                tensors.Add(Entry(p.Name, p.Value, dataStart, length, path));
            }
            return new SafetensorsHeader(tensors, metadata);
        }
    }

    private static SafetensorsEntry Entry(string name, JsonElement e, long dataStart, long length, string path)
    {
        ModelFormatException Bad(string what) => ModelFormatException.At(path, 8, $"tensor '{name}': {what}");
        if (e.ValueKind != JsonValueKind.Object) throw Bad("entry is not an object");
        if (!e.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String) throw Bad("dtype is missing");
        string dtype = dt.GetString()!;
        var type = dtype switch
        {
            "F32" => TensorType.F32,
            "F16" => TensorType.F16,
            "BF16" => TensorType.BF16,
            _ => throw Bad($"dtype {dtype} is not supported; Infinite reads F32, F16 and BF16 from safetensors"),
        };
        if (!e.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array) throw Bad("shape is missing");
        var shape = new List<long>();
        long elements = 1;
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long v) || v < 0 || (v > 0 && elements > length / v))
                throw Bad($"shape {sh.GetRawText()} is impossible for a file of {length} bytes");
            shape.Add(v);
            elements *= v;
        }
        if (!e.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2
            || off[0].ValueKind != JsonValueKind.Number || off[1].ValueKind != JsonValueKind.Number
            || !off[0].TryGetInt64(out long begin) || !off[1].TryGetInt64(out long end) || begin < 0 || end < begin)
            throw Bad("data_offsets must be [begin, end) with 0 <= begin <= end");
        long bytes = TensorEncoding.ByteCount(type, elements);
        if (end - begin != bytes)
            throw Bad($"data_offsets [{begin}, {end}) hold {end - begin} bytes, but shape [{string.Join(", ", shape)}] of {dtype} needs {bytes}");
        if (end > length - dataStart)
            throw ModelFormatException.At(path, dataStart + begin, $"tensor '{name}' data [{dataStart + begin}, {dataStart + end}) runs past the end of the file ({length} bytes)");
        return new SafetensorsEntry(name, type, [.. shape], dataStart + begin, bytes);
    }
}
