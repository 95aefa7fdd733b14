using Infinite.Models;

namespace Infinite.Tests.Models;

public sealed class GgufRoundTripTests : IDisposable
{
    private readonly ModelTestFiles _files = new();

    public void Dispose() => _files.Dispose();

    [Fact]
    public void Metadata_of_every_type_reads_back_with_its_type_and_value()
    {
        var rng = new Random(11);
        var values = new Dictionary<string, object>
        {
            ["u8"] = (byte)rng.Next(256),
            ["i8"] = (sbyte)rng.Next(-128, 128),
            ["u16"] = (ushort)rng.Next(65536),
            ["i16"] = (short)rng.Next(-32768, 32768),
            ["u32"] = (uint)rng.NextInt64(uint.MaxValue),
            ["i32"] = rng.Next(int.MinValue, int.MaxValue),
            ["f32"] = (float)rng.NextDouble(),
            ["bool"] = true,
            ["string"] = "héllo ▁wörld " + rng.Next(),
            ["u64"] = (ulong)rng.NextInt64() * 2,
            ["i64"] = -rng.NextInt64(),
            ["f64"] = rng.NextDouble(),
            ["arr.u8"] = new byte[] { 1, 2, (byte)rng.Next(256) },
            ["arr.i32"] = Enumerable.Range(0, 50).Select(_ => rng.Next()).ToArray(),
            ["arr.f32"] = Enumerable.Range(0, 7).Select(_ => (float)rng.NextDouble()).ToArray(),
            ["arr.f64"] = new[] { rng.NextDouble() },
            ["arr.bool"] = new[] { true, false, true },
            ["arr.string"] = new[] { "a", "", "ü b", "<|eot_id|>" },
            ["arr.i64"] = new[] { long.MinValue, rng.NextInt64() },
            ["arr.empty"] = Array.Empty<int>(),
            ["arr.nested"] = new object[] { new[] { 1, 2 }, new[] { "x", "y" }, new object[] { new float[] { 0.5f } } },
        };
        var w = new GgufWriter(alignment: 64);
        foreach (var (k, v) in values) w.Add(k, v);
        string path = _files.PathOf("meta.gguf");
        w.Write(path);

        var file = GgufFile.Read(path);
        Assert.Equal(3u, file.Version);
        Assert.Equal(64, file.Alignment);
        Assert.Empty(file.Tensors);
        Assert.Equal(values.Count + 1, file.Metadata.Count);   // + general.alignment
        foreach (var (k, v) in values)
        {
            Assert.Equal(v.GetType(), file.Metadata[k].GetType());
            Assert.Equal(v, file.Metadata[k]);
        }
        var nested = (object[])file.Metadata["arr.nested"];
        Assert.Equal(new[] { 1, 2 }, nested[0]);
        Assert.Equal(new[] { "x", "y" }, nested[1]);
        Assert.Equal(new[] { 0.5f }, ((object[])nested[2])[0]);
    }

    [Theory]
    [InlineData(TensorType.F32)]
    [InlineData(TensorType.F16)]
    [InlineData(TensorType.BF16)]
    [InlineData(TensorType.Q8_0)]
    public void Tensors_of_every_type_read_back_with_shape_offset_and_values(TensorType type)
    {
        var rng = new Random((int)type + 5);
        long[][] shapes = [[64], [3, 32], [2, 3, 64], [2, 1, 2, 32]];
        var data = shapes.Select(s => Enumerable.Range(0, (int)s.Aggregate(1L, (a, b) => a * b)).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray()).ToArray();
        var w = new GgufWriter();
        for (int i = 0; i < shapes.Length; i++)
        {
            var values = data[i];
            w.AddTensor($"t{i}", type, shapes[i], s =>
            {
                var bytes = new byte[TensorEncoding.ByteCount(type, values.Length)];
                TensorEncoding.Encode(values, type, bytes);
                s.Write(bytes);
            });
        }
        string path = _files.PathOf("tensors.gguf");
        w.Write(path);

        var file = GgufFile.Read(path);
        byte[] all = File.ReadAllBytes(path);
        Assert.Equal(shapes.Length, file.Tensors.Count);
        for (int i = 0; i < shapes.Length; i++)
        {
            var t = file.Tensors[i];
            Assert.Equal($"t{i}", t.Name);
            Assert.Equal(type, t.Type);
            Assert.Equal(shapes[i], t.Shape);
            Assert.Equal(0, t.Offset % 32);
            Assert.Equal(TensorEncoding.ByteCount(type, data[i].Length), t.Bytes);
            var decoded = new float[data[i].Length];
            TensorEncoding.Decode(all.AsSpan((int)t.Offset, (int)t.Bytes), type, decoded);
            for (int j = 0; j < decoded.Length; j++) Assert.True(MathF.Abs(decoded[j] - data[i][j]) <= 2f / 127 / 2 + 1e-6f, $"{t.Name}[{j}]");
        }
    }

    [Fact]
    public void Writer_rejects_values_gguf_cannot_hold_and_tensors_that_write_the_wrong_size()
    {
        var w = new GgufWriter();
        Assert.Contains("decimal", Assert.Throws<ArgumentException>(() => w.Add("k", 1.5m)).Message, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("added twice", Assert.Throws<ArgumentException>(() => w.Add("a", 1).Add("a", 2)).Message);
        Assert.Throws<ArgumentException>(() => w.AddTensor("q", TensorType.Q8_0, [2, 20], _ => { }));
        w.AddTensor("short", TensorType.F32, [4], s => s.Write(new byte[12]));
        var e = Assert.Throws<InvalidOperationException>(() => w.Write(_files.PathOf("bad.gguf")));
        Assert.Contains("'short'", e.Message);
        Assert.Contains("12 bytes, 16 expected", e.Message);
    }
}
