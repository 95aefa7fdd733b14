namespace Infinite.Models;

/// <summary>Storage type of a weight tensor in a model file (mirrors <c>inf_tensor_type</c>).</summary>
public enum TensorType
{
    F32 = 0,
    F16 = 1,
    BF16 = 2,
    /// <summary>GGUF Q8_0: blocks of 32 int8 values with one f16 scale (34 bytes), along the innermost dimension.</summary>
    Q8_0 = 3,
}

/// <summary>
/// One tensor of a model file. <paramref name="Shape"/> is row-major, outermost first (a linear layer's
/// weight is [out, in]); <paramref name="Name"/> uses GGUF names (<c>blk.0.attn_q.weight</c>) whatever the
/// file format. <paramref name="Offset"/> is the absolute byte offset in file <paramref name="FileIndex"/> of
/// the model (0 for a GGUF file; the shard for a safetensors folder).
/// </summary>
public sealed record TensorInfo(string Name, TensorType Type, long[] Shape, int FileIndex, long Offset, long Bytes)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>Progress of loading a model: bytes of weights prepared so far out of the total.</summary>
public readonly record struct LoadProgress(string Stage, long Done, long Total);
