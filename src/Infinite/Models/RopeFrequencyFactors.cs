namespace Infinite.Models;

/// <summary>
/// Llama 3.1's RoPE rule as per-frequency divisors, the form llama.cpp stores in the <c>rope_freqs.weight</c>
/// tensor: 1 for high frequencies, the factor for low ones, a smooth blend between.
/// </summary>
public static class RopeFrequencyFactors
{
    /// <summary>Divisor of each of the head_dim/2 RoPE frequencies under <paramref name="s"/> (Llama3 kind).</summary>
    public static float[] Compute(RopeScaling s, int headDim, float theta)
    {
        var factors = new float[headDim / 2];
        double lowWavelen = s.OriginalContext / (double)s.LowFreqFactor;
        double highWavelen = s.OriginalContext / (double)s.HighFreqFactor;
        for (int i = 0; i < factors.Length; i++)
        {
            double freq = Math.Pow(theta, -2.0 * i / headDim);
            double wavelen = 2 * Math.PI / freq;
            if (wavelen < highWavelen) factors[i] = 1f;
            else if (wavelen > lowWavelen) factors[i] = s.Factor;
            else
            {
                double smooth = (s.OriginalContext / wavelen - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor);
                factors[i] = (float)(1 / ((1 - smooth) / s.Factor + smooth));
            }
        }
        return factors;
    }

    /// <summary>
    /// The Llama3 scaling that produces <paramref name="stored"/>, or null. llama.cpp keeps only the tensor, so
    /// the factor is read off its largest entry and low/high frequency factors of 1 and 4 (every Llama 3.x
    /// release) are checked against all entries; anything else is not expressible as <see cref="RopeScaling"/>.
    /// </summary>
    public static RopeScaling? Recover(ReadOnlySpan<float> stored, int headDim, float theta, int originalContext)
    {
        if (stored.Length != headDim / 2 || stored.Length == 0) return null;
        float factor = 0;
        foreach (float f in stored) factor = MathF.Max(factor, f);
        if (!(factor >= 1)) return null;
        var candidate = new RopeScaling(RopeScalingKind.Llama3, factor, 1f, 4f, originalContext);
        var expected = Compute(candidate, headDim, theta);
        for (int i = 0; i < expected.Length; i++)
            if (!(MathF.Abs(expected[i] - stored[i]) <= 1e-3f * MathF.Max(1f, expected[i]))) return null;
        return candidate;
    }
}
