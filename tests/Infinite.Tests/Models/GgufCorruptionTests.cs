using System.Buffers.Binary;
using System.Text;
using Infinite.Models;

namespace Infinite.Tests.Models;

/// <summary>Truncated, corrupt and unsupported GGUF files fail at open with a ModelFormatException that names
/// the file and the thing being read, and never with any other exception.</summary>
public sealed class GgufCorruptionTests : IDisposable
{
    private readonly ModelTestFiles _files = new();
    private readonly byte[] _good;
    private readonly GgufFile _header;

    /// <summary>The smallest model the generator writes: a tiny vocabulary keeps the header short.</summary>
    private static readonly LlamaConfig Tiny = ModelTestFiles.Small with { VocabSize = 264, Dim = 32, FfnDim = 32, HeadDim = 8, Layers = 1 };

    public GgufCorruptionTests()
    {
        string path = _files.WriteGguf(Tiny, seed: 21, TensorType.Q8_0, "good.gguf");
        _good = File.ReadAllBytes(path);
        _header = GgufFile.Read(path);
    }

    public void Dispose() => _files.Dispose();

    private ModelFormatException OpenFails(byte[] bytes, string name = "bad.gguf")
    {
        string path = _files.PathOf(name);
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<ModelFormatException>(() => ModelFile.Open(path).Dispose());
        Assert.StartsWith(name + ": ", e.Message);
        return e;
    }

    private int OffsetOf(string text) => _good.AsSpan().IndexOf(Encoding.UTF8.GetBytes(text));

    [Fact]
    public void The_untouched_file_opens()
    {
        using var m = ModelFile.Open(_files.PathOf("good.gguf"));
        Assert.Equal(Tiny, m.Config);
    }

    [Fact]
    public void Truncation_anywhere_is_reported_with_the_offset_and_what_was_being_read()
    {
        int tensorInfos = OffsetOf("token_embd.weight") - 8;
        var cuts = Enumerable.Range(0, 40)                                        // inside the fixed header
            .Concat(Enumerable.Range(0, 60).Select(i => 24 + i * (tensorInfos - 24) / 60))  // inside the metadata
            .Concat(Enumerable.Range(0, 40).Select(i => tensorInfos + i * ((int)_header.DataOffset - tensorInfos) / 40))
            .Concat(Enumerable.Range(0, 40).Select(i => (int)_header.DataOffset + 1 + i * (_good.Length - 1 - (int)_header.DataOffset) / 40))
            .Append(_good.Length - 1)
            .Distinct();
        foreach (int cut in cuts)
        {
            var e = OpenFails(_good[..cut]);
            if (cut < 24) Assert.Contains("too short for a GGUF header", e.Message);
            else Assert.True(new[] { "past the end of the file", "exceeds the file", "impossible for a file of" }.Any(s => e.Message.Contains(s, StringComparison.Ordinal)),
                $"cut at {cut}: {e.Message}");
            if (cut > _header.DataOffset) Assert.Contains("tensor '", e.Message);
        }
        var last = OpenFails(_good[..^1]);
        Assert.Matches(@"at byte \d+: tensor '.+' data \[\d+, \d+\) runs past the end of the file \(\d+ bytes\)", last.Message);
    }

    [Fact]
    public void Wrong_magic_and_version_are_named()
    {
        var bytes = (byte[])_good.Clone();
        bytes[0] = (byte)'X';
        Assert.Contains("not a GGUF file", OpenFails(bytes).Message);
        bytes = (byte[])_good.Clone();
        bytes[4] = 7;
        Assert.Contains("GGUF version 7 is not supported", OpenFails(bytes).Message);
        bytes[4] = 2;   // v2 has the same layout as v3 (v3 only added big-endian files)
        File.WriteAllBytes(_files.PathOf("v2.gguf"), bytes);
        using var v2 = ModelFile.Open(_files.PathOf("v2.gguf"));
        Assert.Equal(Tiny, v2.Config);
    }

    [Fact]
    public void Huge_lengths_and_counts_are_refused_before_any_allocation()
    {
        var bytes = (byte[])_good.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(8), 1UL << 40);   // tensor count
        Assert.Matches("at byte 8: tensors: count 1099511627776 exceeds the file", OpenFails(bytes).Message);

        bytes = (byte[])_good.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(16), ulong.MaxValue);   // metadata count
        Assert.Contains("at byte 16: metadata entries: count", OpenFails(bytes).Message);

        bytes = (byte[])_good.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(24), 1_000_000_000_000);   // first key's length
        Assert.Contains("at byte 24: key of metadata entry 0: string length 1000000000000 exceeds the file", OpenFails(bytes).Message);

        // The token array's count (8 bytes after its element type).
        int tokens = OffsetOf("tokenizer.ggml.tokens") + "tokenizer.ggml.tokens".Length + 4 + 4;
        bytes = (byte[])_good.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(tokens), 1UL << 60);
        Assert.Contains($"at byte {tokens}: metadata 'tokenizer.ggml.tokens': count 1152921504606846976 exceeds the file", OpenFails(bytes).Message);

        // A tensor dimension so large the element count would overflow.
        int dims = OffsetOf("token_embd.weight") + "token_embd.weight".Length + 4;
        bytes = (byte[])_good.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(dims), ulong.MaxValue / 3);
        Assert.Contains("tensor 'token_embd.weight' dimension 0 is 6148914691236517205, impossible", OpenFails(bytes).Message);
    }

    [Fact]
    public void Unsupported_tensor_types_are_refused_by_ggml_name()
    {
        int type = OffsetOf("blk.0.attn_q.weight") + "blk.0.attn_q.weight".Length + 4 + 2 * 8;
        var bytes = (byte[])_good.Clone();
        Assert.Equal(GgmlTypes.Q8_0, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(type)));
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(type), 12);
        var e = OpenFails(bytes, "model.gguf");
        Assert.Equal($"model.gguf: at byte {type}: tensor 'blk.0.attn_q.weight' has type Q4_K (12); Infinite reads F32, F16, BF16 and Q8_0", e.Message);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(type), 2);
        Assert.Contains("type Q4_0 (2)", OpenFails(bytes).Message);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(type), 999);
        Assert.Contains("type unknown (999)", OpenFails(bytes).Message);
    }

    [Fact]
    public void Missing_tensors_wrong_shapes_and_bad_metadata_are_named()
    {
        var bytes = (byte[])_good.Clone();
        int name = OffsetOf("blk.0.ffn_up.weight");
        bytes[name + 6] = (byte)'x';   // blk.0.fxn_up.weight
        Assert.Contains("tensor 'blk.0.ffn_up.weight' is missing", OpenFails(bytes).Message);

        bytes = (byte[])_good.Clone();
        int dims = OffsetOf("blk.0.ffn_norm.weight") + "blk.0.ffn_norm.weight".Length + 4;
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(dims), 16);
        Assert.Contains("tensor 'blk.0.ffn_norm.weight' has shape [16], expected [32]", OpenFails(bytes).Message);

        bytes = (byte[])_good.Clone();
        int arch = OffsetOf("general.architecture") + "general.architecture".Length + 4 + 8;
        Encoding.ASCII.GetBytes("gemma").CopyTo(bytes, arch);
        Assert.Contains("general.architecture is 'gemma'", OpenFails(bytes).Message);

        bytes = (byte[])_good.Clone();
        int model = OffsetOf("tokenizer.ggml.model") + "tokenizer.ggml.model".Length + 4 + 8;
        Encoding.ASCII.GetBytes("bert").CopyTo(bytes, model);
        Assert.Contains("tokenizer.ggml.model 'bert' is not supported", OpenFails(bytes).Message);

        bytes = (byte[])_good.Clone();
        int blocks = OffsetOf("llama.block_count") + "llama.block_count".Length;
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(blocks), (uint)GgufValueType.String);
        Assert.Contains("exceeds the file", OpenFails(bytes).Message);   // the uint32 value read as a string length

        bytes = (byte[])_good.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(blocks), (uint)GgufValueType.Float32);
        Assert.Contains("metadata 'llama.block_count' should be an integer", OpenFails(bytes).Message);
    }

    [Fact]
    public void Rope_freqs_that_are_not_llama3_are_refused()
    {
        var c = Tiny with { RopeScaling = new RopeScaling(RopeScalingKind.Llama3, 8f, 1f, 4f, 64) };
        string path = _files.WriteGguf(c, 1, TensorType.F32, "llama3.gguf");
        var file = GgufFile.Read(path);
        var freqs = file.Tensors.Single(t => t.Name == "rope_freqs.weight");
        var bytes = File.ReadAllBytes(path);
        BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan((int)freqs.Offset), 2.5f);
        Assert.Contains("do not follow Llama 3.1's rule", OpenFails(bytes).Message);
    }

    [Fact]
    public void Hundreds_of_random_corruptions_give_only_ModelFormatException()
    {
        var rng = new Random(1234);
        int header = (int)_header.DataOffset;
        string path = _files.PathOf("fuzz.gguf");
        int failures = 0;
        for (int round = 0; round < 300; round++)
        {
            var bytes = (byte[])_good.Clone();
            for (int k = rng.Next(1, 4); k > 0; k--)
            {
                int at = rng.Next(header);
                switch (rng.Next(4))
                {
                    case 0: bytes[at] = (byte)rng.Next(256); break;
                    case 1: bytes[at] ^= (byte)(1 << rng.Next(8)); break;
                    case 2: if (at + 8 <= bytes.Length) BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(at), (ulong)rng.NextInt64() << rng.Next(4)); break;
                    default: if (at + 4 <= bytes.Length) BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(at), (uint)rng.Next(0, 40)); break;
                }
            }
            if (rng.Next(5) == 0) bytes = bytes[..rng.Next(bytes.Length)];
            File.WriteAllBytes(path, bytes);
            try
            {
                using var m = ModelFile.Open(path);
                _ = m.ReadFloats("blk.0.attn_norm.weight");
            }
            catch (ModelFormatException e)
            {
                Assert.StartsWith("fuzz.gguf: ", e.Message);
                failures++;
            }
        }
        Assert.InRange(failures, 100, 300);   // most corruptions of the header are caught, the rest are harmless
    }
}
