namespace Infinite.Models;

/// <summary>
/// Seeded weights of a synthetic model. Every row of every tensor comes from its own generator, keyed by
/// (seed, GGUF name, Hugging Face row), so a GGUF and a safetensors folder of the same seed hold the same values
/// whatever order they are written in, and a row is produced without materialising the tensor.
/// </summary>
internal static class SyntheticWeights
{
    /// <summary>Mean and standard deviation of a tensor's values. Linear layers get 1/sqrt(in) so each
    /// projection keeps unit variance; the two residual-branch outputs are further scaled by 1/sqrt(2 layers)
    /// so the residual stream stays O(1) over depth. Norm weights are 1 with small noise.</summary>
    public static (float Mean, float Std) Distribution(string name, LlamaConfig c)
    {
        float residual = 1f / MathF.Sqrt(2f * c.Layers);
        if (name.EndsWith("norm.weight", StringComparison.Ordinal)) return (1f, 0.05f);
        if (name == TensorNames.TokenEmbedding) return (0f, 1f);
        if (name.Contains(".attn_output.", StringComparison.Ordinal)) return (0f, residual / MathF.Sqrt(c.QHeads * c.HeadDim));
        if (name.Contains(".ffn_down.", StringComparison.Ordinal)) return (0f, residual / MathF.Sqrt(c.FfnDim));
        return (0f, 1f / MathF.Sqrt(c.Dim));
    }

    public static void FillRow(int seed, string name, long row, float mean, float std, Span<float> dest)
    {
        ulong state = Mix((ulong)(uint)seed * 0x9E3779B97F4A7C15UL ^ Fnv(name)) ^ Mix((ulong)row + 0x632BE59BD9B4E019UL);
        for (int i = 0; i < dest.Length; i += 2)
        {
            // Box-Muller: two uniforms in (0, 1] give two independent normals.
            double u1 = ((Next(ref state) >> 11) + 1) * (1.0 / (1UL << 53));
            double u2 = (Next(ref state) >> 11) * (1.0 / (1UL << 53));
            double radius = Math.Sqrt(-2 * Math.Log(u1));
            var (sin, cos) = Math.SinCos(2 * Math.PI * u2);
            dest[i] = (float)(mean + std * radius * cos);
            if (i + 1 < dest.Length) dest[i + 1] = (float)(mean + std * radius * sin);
        }
    }

    private static ulong Next(ref ulong state)
    {
        state += 0x9E3779B97F4A7C15UL;
        return Mix(state);
    }

    private static ulong Mix(ulong z)   // SplitMix64 finaliser
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private static ulong Fnv(string s)
    {
        ulong h = 0xCBF29CE484222325UL;
        foreach (char ch in s) h = (h ^ ch) * 0x100000001B3UL;
        return h;
    }
}
