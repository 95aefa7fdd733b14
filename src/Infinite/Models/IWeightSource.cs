namespace Infinite.Models;

/// <summary>A model's configuration and its weights by GGUF name (implemented by <c>ModelFile</c>).</summary>
public interface IWeightSource
{
    LlamaConfig Config { get; }

    IReadOnlyList<TensorInfo> Tensors { get; }

    /// <summary>The tensor's elements as float32 (F16, BF16 and Q8_0 converted), row-major.</summary>
    float[] ReadFloats(string name);

    /// <summary>Address of the tensor's bytes as stored (<see cref="TensorInfo.Type"/>, <see cref="TensorInfo.Bytes"/>
    /// long), valid until the source is disposed: what the native model reads in place.</summary>
    nint GetPointer(TensorInfo tensor);
}
