namespace Infinite.Models;

/// <summary>The on-disk layout a <see cref="ModelFile"/> was opened from.</summary>
public enum ModelFormat
{
    /// <summary>One GGUF file (llama.cpp), q/k rows permuted for <see cref="RopeStyle.Interleaved"/>.</summary>
    Gguf,
    /// <summary>A Hugging Face folder: config.json and one or more *.safetensors shards.</summary>
    Safetensors,
}
