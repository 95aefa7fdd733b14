namespace Infinite.Models;

/// <summary>Builds a <see cref="LlamaConfig"/> from the <c>{arch}.*</c> keys of a llama or mistral GGUF.</summary>
internal static class GgufConfigReader
{
    public const string RopeFreqsTensor = "rope_freqs.weight";

    /// <param name="readFloats">Reads a tensor's values (used for <c>rope_freqs.weight</c>).</param>
    public static LlamaConfig Read(GgufMetadata m, IReadOnlyList<TensorInfo> tensors, int? tokenCount, Func<TensorInfo, float[]> readFloats)
    {
        string arch = m.String("general.architecture");
        if (arch is not ("llama" or "mistral"))
            throw m.Error($"general.architecture is '{arch}'; Infinite runs 'llama' and 'mistral' models");
        int dim = m.Positive($"{arch}.embedding_length");
        int layers = m.Positive($"{arch}.block_count");
        int ffn = m.Positive($"{arch}.feed_forward_length");
        int heads = m.Positive($"{arch}.attention.head_count");
        int kvHeads = m.OptionalPositive($"{arch}.attention.head_count_kv") ?? heads;
        float eps = m.Float($"{arch}.attention.layer_norm_rms_epsilon");
        float theta = m.OptionalFloat($"{arch}.rope.freq_base") ?? 10000f;
        int headDim = m.OptionalPositive($"{arch}.attention.key_length")
            ?? m.OptionalPositive($"{arch}.rope.dimension_count")
            ?? (dim % heads == 0 ? dim / heads : throw m.Error($"embedding_length {dim} is not a multiple of head_count {heads} and no key_length is given"));
        int context = m.Positive($"{arch}.context_length");
        int vocab = m.OptionalPositive($"{arch}.vocab_size") ?? tokenCount
            ?? throw m.Error($"neither {arch}.vocab_size nor tokenizer.ggml.tokens is present");

        var scaling = RopeScaling.None;
        string? scalingType = m.OptionalString($"{arch}.rope.scaling.type");
        int originalContext = m.OptionalPositive($"{arch}.rope.scaling.original_context_length") ?? 8192;
        switch (scalingType)
        {
            case null or "none":
                break;
            case "linear":
                scaling = new RopeScaling(RopeScalingKind.Linear, m.Float($"{arch}.rope.scaling.factor"), OriginalContext: originalContext);
                break;
            default:
                throw m.Error($"{arch}.rope.scaling.type '{scalingType}' is not supported (none and linear are)");
        }
        if (tensors.FirstOrDefault(t => t.Name == RopeFreqsTensor) is { } freqs)
        {
            if (scaling.Kind != RopeScalingKind.None)
                throw m.Error($"both {arch}.rope.scaling.type '{scalingType}' and a {RopeFreqsTensor} tensor are present");
            if (freqs.ElementCount != headDim / 2)
                throw m.Error($"tensor '{RopeFreqsTensor}' has shape [{string.Join(", ", freqs.Shape)}], expected [{headDim / 2}]");
            scaling = RopeFrequencyFactors.Recover(readFloats(freqs), headDim, theta, originalContext)
                ?? throw m.Error($"tensor '{RopeFreqsTensor}' holds RoPE frequency factors that do not follow Llama 3.1's rule (low_freq_factor 1, high_freq_factor 4); Infinite cannot express them");
        }
        bool tied = !tensors.Any(t => t.Name == TensorNames.Output);
        var config = new LlamaConfig(vocab, dim, layers, heads, kvHeads, headDim, ffn, eps, theta,
            RopeStyle.Interleaved, scaling, tied, context);
        return ConfigValidator.Validate(config, m.Path);
    }
}
