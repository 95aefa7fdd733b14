namespace Infinite.Models;

/// <summary>One tensor entry of a safetensors header (Hugging Face name), offset absolute in its file.</summary>
public sealed record SafetensorsEntry(string Name, TensorType Type, long[] Shape, long Offset, long Bytes);
