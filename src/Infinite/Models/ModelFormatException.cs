namespace Infinite.Models;

/// <summary>A model file (GGUF, safetensors, config.json) that is truncated, corrupt or not supported (an
/// IOException: InvalidDataException is sealed).
/// The message names the file and, where it applies, the byte offset and what was being read.</summary>
public sealed class ModelFormatException : IOException
{
    public ModelFormatException() { }

    public ModelFormatException(string message) : base(message) { }

    public ModelFormatException(string message, Exception inner) : base(message, inner) { }

    internal static ModelFormatException In(string file, string what) =>
        new($"{System.IO.Path.GetFileName(file)}: {what}");

    internal static ModelFormatException At(string file, long offset, string what) =>
        new($"{System.IO.Path.GetFileName(file)}: at byte {offset}: {what}");
}
