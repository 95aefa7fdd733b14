namespace Infinite.Models;

/// <summary>Checks that a <see cref="LlamaConfig"/> read from a file describes a model that can exist.</summary>
internal static class ConfigValidator
{
    public static LlamaConfig Validate(LlamaConfig c, string path)
    {
        void Check(bool ok, string what)
        {
            if (!ok) throw ModelFormatException.In(path, what);
        }
        Check(c.VocabSize > 0 && c.Dim > 0 && c.Layers > 0 && c.QHeads > 0 && c.KvHeads > 0 && c.HeadDim > 0 && c.FfnDim > 0,
            $"model sizes must be positive: vocab {c.VocabSize}, dim {c.Dim}, layers {c.Layers}, heads {c.QHeads}/{c.KvHeads}, head_dim {c.HeadDim}, ffn {c.FfnDim}");
        Check(c.QHeads % c.KvHeads == 0, $"{c.QHeads} query heads is not a multiple of {c.KvHeads} KV heads");
        Check(c.HeadDim % 2 == 0, $"head_dim {c.HeadDim} must be even for RoPE");
        Check((long)c.QHeads * c.HeadDim <= int.MaxValue, $"{c.QHeads} heads of {c.HeadDim} is too large");
        Check(c.ContextLength > 0, $"context length {c.ContextLength} must be positive");
        Check(float.IsFinite(c.NormEps) && c.NormEps > 0, $"RMS norm epsilon {c.NormEps} must be positive");
        Check(float.IsFinite(c.RopeTheta) && c.RopeTheta > 0, $"RoPE theta {c.RopeTheta} must be positive");
        var s = c.RopeScaling;
        Check(s.Kind == RopeScalingKind.None || (float.IsFinite(s.Factor) && s.Factor > 0), $"RoPE scaling factor {s.Factor} must be positive");
        Check(s.Kind != RopeScalingKind.Llama3 || (s.OriginalContext > 0 && s.HighFreqFactor > s.LowFreqFactor && s.LowFreqFactor > 0),
            $"Llama 3 RoPE scaling needs original context > 0 and 0 < low_freq_factor < high_freq_factor, got {s}");
        return c;
    }
}
