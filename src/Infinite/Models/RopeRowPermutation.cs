namespace Infinite.Models;

/// <summary>
/// The q/k row order of GGUF llama files. Hugging Face rotates pairs (i, i + headDim/2) of each head;
/// llama.cpp's converter reorders each head's rows to (0, h, 1, h+1, ...) with h = headDim/2 so that RoPE on
/// adjacent pairs (<see cref="RopeStyle.Interleaved"/>) computes the same function.
/// </summary>
public static class RopeRowPermutation
{
    /// <summary>The Hugging Face row stored at GGUF row <paramref name="ggufRow"/> of a q or k weight.</summary>
    public static long HuggingFaceRow(long ggufRow, int headDim)
    {
        long head = ggufRow / headDim;
        int within = (int)(ggufRow % headDim);
        return head * headDim + (within % 2) * (headDim / 2) + within / 2;
    }

    /// <summary>Reorders a [heads*headDim, columns] matrix from Hugging Face to GGUF row order.</summary>
    public static float[] ToGguf(ReadOnlySpan<float> huggingFace, int headDim, int columns) => Reorder(huggingFace, headDim, columns, toGguf: true);

    /// <summary>Reorders a [heads*headDim, columns] matrix from GGUF back to Hugging Face row order.</summary>
    public static float[] ToHuggingFace(ReadOnlySpan<float> gguf, int headDim, int columns) => Reorder(gguf, headDim, columns, toGguf: false);

    private static float[] Reorder(ReadOnlySpan<float> source, int headDim, int columns, bool toGguf)
    {
        if (headDim <= 0 || headDim % 2 != 0) throw new ArgumentOutOfRangeException(nameof(headDim), headDim, "head_dim must be positive and even");
        if (columns <= 0 || source.Length % ((long)headDim * columns) != 0)
            throw new ArgumentException($"{source.Length} values are not whole heads of {headDim} rows of {columns}", nameof(source));
        var result = new float[source.Length];
        long rows = source.Length / columns;
        for (long g = 0; g < rows; g++)
        {
            long h = HuggingFaceRow(g, headDim);
            var (from, to) = toGguf ? (h, g) : (g, h);
            source.Slice((int)(from * columns), columns).CopyTo(result.AsSpan((int)(to * columns), columns));
        }
        return result;
    }
}
