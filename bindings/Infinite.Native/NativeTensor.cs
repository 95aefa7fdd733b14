namespace Infinite.Native;

/// <summary>
/// One weight tensor handed to <see cref="NativeModel.Create"/>: its GGUF name (<c>blk.0.attn_q.weight</c>),
/// storage type, row-major shape (outermost first, at most 4 dimensions) and the host memory holding
/// <see cref="Bytes"/> bytes of it. On the CPU an F32 tensor is used in place, so that memory must stay valid
/// until the model is disposed.
/// </summary>
public readonly struct NativeTensor
{
    public NativeTensor(string name, inf_tensor_type type, long[] shape, nint data, long bytes)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(shape);
        if (shape.Length is 0 or > 4)
        {
            throw new ArgumentException($"tensor {name} has {shape.Length} dimensions; the native model takes 1 to 4", nameof(shape));
        }
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        Name = name;
        Type = type;
        Shape = shape;
        Data = data;
        Bytes = bytes;
    }

    public string Name { get; }

    public inf_tensor_type Type { get; }

    public long[] Shape { get; }

    public nint Data { get; }

    public long Bytes { get; }

    public override string ToString() => $"{Name} {Type} [{string.Join(", ", Shape ?? [])}]";
}
