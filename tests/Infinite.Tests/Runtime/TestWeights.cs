using System.Runtime.InteropServices;
using Infinite.Models;

namespace Infinite.Tests.Runtime;

/// <summary>
/// Llama weights held in unmanaged memory, as a memory-mapped model file would be: either a tiny model with
/// seeded random weights (matrices normal with scale 1/sqrt(in) stored as <see cref="MatrixType"/>, norms F32
/// near 1) or given F32 values. <see cref="ReadFloats"/> decodes the stored bytes, so the reference sees
/// exactly the rounded weights the native model reads.
/// </summary>
internal sealed class TestWeights : IWeightSource, IDisposable
{
    private readonly Dictionary<string, (TensorInfo Info, nint Data)> _tensors = new(StringComparer.Ordinal);
    private readonly List<TensorInfo> _order = [];

    private TestWeights(LlamaConfig config, TensorType matrixType)
    {
        Config = config;
        MatrixType = matrixType;
    }

    /// <summary>F32 tensors with the given values; each with its shape.</summary>
    public static TestWeights FromValues(LlamaConfig config, IEnumerable<(string Name, long[] Shape, float[] Values)> tensors)
    {
        var result = new TestWeights(config, TensorType.F32);
        foreach ((string name, long[] shape, float[] values) in tensors)
        {
            result.Add(name, TensorType.F32, shape, values);
        }
        return result;
    }

    public static TestWeights Random(LlamaConfig config, int seed, TensorType matrixType = TensorType.F32)
    {
        var result = new TestWeights(config, matrixType);
        result.Fill(new System.Random(seed));
        return result;
    }

    private void Fill(Random random)
    {
        LlamaConfig config = Config;
        int q = config.QHeads * config.HeadDim, kv = config.KvHeads * config.HeadDim;
        AddMatrix(random, "token_embd.weight", config.VocabSize, config.Dim, scale: 1.0);
        for (int l = 0; l < config.Layers; l++)
        {
            string p = $"blk.{l}.";
            AddNorm(random, p + "attn_norm.weight", config.Dim);
            AddMatrix(random, p + "attn_q.weight", q, config.Dim);
            AddMatrix(random, p + "attn_k.weight", kv, config.Dim);
            AddMatrix(random, p + "attn_v.weight", kv, config.Dim);
            AddMatrix(random, p + "attn_output.weight", config.Dim, q);
            AddNorm(random, p + "ffn_norm.weight", config.Dim);
            AddMatrix(random, p + "ffn_gate.weight", config.FfnDim, config.Dim);
            AddMatrix(random, p + "ffn_up.weight", config.FfnDim, config.Dim);
            AddMatrix(random, p + "ffn_down.weight", config.Dim, config.FfnDim);
        }
        AddNorm(random, "output_norm.weight", config.Dim);
        if (!config.TiedEmbeddings)
        {
            AddMatrix(random, "output.weight", config.VocabSize, config.Dim);
        }
    }

    /// <summary>dim 64, 2 layers, 4 q / 2 kv heads, head_dim 16, ffn 96, vocab 64.</summary>
    public static LlamaConfig TinyConfig(RopeStyle style = RopeStyle.Interleaved, RopeScaling? scaling = null, bool tied = false) =>
        new(VocabSize: 64, Dim: 64, Layers: 2, QHeads: 4, KvHeads: 2, HeadDim: 16, FfnDim: 96, NormEps: 1e-5f,
            RopeTheta: 10000f, RopeStyle: style, RopeScaling: scaling ?? RopeScaling.None, TiedEmbeddings: tied,
            ContextLength: 512);

    public LlamaConfig Config { get; }

    public TensorType MatrixType { get; }

    public IReadOnlyList<TensorInfo> Tensors => _order;

    public float[] ReadFloats(string name)
    {
        (TensorInfo info, nint data) = _tensors[name];
        var result = new float[info.ElementCount];
        unsafe
        {
            for (int i = 0; i < result.Length; i++)
            {
                result[i] = info.Type switch
                {
                    TensorType.F32 => ((float*)data)[i],
                    TensorType.F16 => (float)((Half*)data)[i],
                    TensorType.BF16 => BitConverter.Int32BitsToSingle(((ushort*)data)[i] << 16),
                    _ => throw new NotSupportedException(info.Type.ToString()),
                };
            }
        }
        return result;
    }

    public nint GetPointer(TensorInfo tensor) => _tensors[tensor.Name].Data;

    /// <summary>Replaces a tensor's declared shape (same bytes): for wrong-shape error tests.</summary>
    public void Reshape(string name, long[] shape)
    {
        (TensorInfo info, nint data) = _tensors[name];
        var changed = info with { Shape = shape };
        _tensors[name] = (changed, data);
        _order[_order.IndexOf(info)] = changed;
    }

    public void Dispose()
    {
        foreach ((_, nint data) in _tensors.Values)
        {
            unsafe
            {
                NativeMemory.AlignedFree((void*)data);
            }
        }
        _tensors.Clear();
        _order.Clear();
    }

    private void AddMatrix(Random random, string name, int rows, int cols, double? scale = null)
    {
        double s = scale ?? 1.0 / Math.Sqrt(cols);
        var values = new float[rows * cols];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = (float)(s * Normal(random));
        }
        Add(name, MatrixType, [rows, cols], values);
    }

    private void AddNorm(Random random, string name, int length)
    {
        var values = new float[length];
        for (int i = 0; i < length; i++)
        {
            values[i] = (float)(1 + 0.2 * Normal(random));
        }
        Add(name, TensorType.F32, [length], values);
    }

    private unsafe void Add(string name, TensorType type, long[] shape, float[] values)
    {
        int elementBytes = type == TensorType.F32 ? 4 : 2;
        long bytes = (long)values.Length * elementBytes;
        nint data = (nint)NativeMemory.AlignedAlloc((nuint)bytes, 64);
        for (int i = 0; i < values.Length; i++)
        {
            switch (type)
            {
                case TensorType.F32:
                    ((float*)data)[i] = values[i];
                    break;
                case TensorType.F16:
                    ((Half*)data)[i] = (Half)values[i];
                    break;
                default:
                    ((ushort*)data)[i] = ToBFloat16(values[i]);
                    break;
            }
        }
        var info = new TensorInfo(name, type, shape, FileIndex: 0, Offset: 0, Bytes: bytes);
        _tensors.Add(name, (info, data));
        _order.Add(info);
    }

    // Round to nearest even on the dropped 16 bits (finite inputs only).
    private static ushort ToBFloat16(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        bits += 0x7FFF + ((bits >> 16) & 1);
        return (ushort)(bits >> 16);
    }

    private static double Normal(Random random)
    {
        double u1 = 1.0 - random.NextDouble(), u2 = random.NextDouble();
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}
