namespace Infinite.Native;

/// <summary>Shape and hyper-parameters of a Llama-family model as the native core takes them
/// (mirrors <c>inf_model_config</c>; the native library validates it and names a bad field).</summary>
public sealed record NativeModelConfig
{
    public required int VocabSize { get; init; }
    public required int Dim { get; init; }
    public required int Layers { get; init; }
    public required int QHeads { get; init; }
    public required int KvHeads { get; init; }
    public required int HeadDim { get; init; }
    public required int FfnDim { get; init; }
    /// <summary>The LM head is the token embedding (no output.weight tensor).</summary>
    public bool TiedEmbeddings { get; init; }
    public float NormEps { get; init; } = 1e-5f;
    public float RopeTheta { get; init; } = 10000f;
    public inf_rope_style RopeStyle { get; init; }
    public inf_rope_scaling RopeScaling { get; init; }
    public float RopeFactor { get; init; } = 1f;
    public float RopeLowFreqFactor { get; init; } = 1f;
    public float RopeHighFreqFactor { get; init; } = 4f;
    public int RopeOriginalContext { get; init; } = 8192;

    internal unsafe inf_model_config ToNative() => new()
    {
        size = (uint)sizeof(inf_model_config),
        vocab_size = VocabSize,
        dim = Dim,
        layers = Layers,
        q_heads = QHeads,
        kv_heads = KvHeads,
        head_dim = HeadDim,
        ffn_dim = FfnDim,
        tied_embeddings = TiedEmbeddings ? 1 : 0,
        norm_eps = NormEps,
        rope_theta = RopeTheta,
        rope_style = RopeStyle,
        rope_scaling = RopeScaling,
        rope_factor = RopeFactor,
        rope_low_freq_factor = RopeLowFreqFactor,
        rope_high_freq_factor = RopeHighFreqFactor,
        rope_original_context = RopeOriginalContext,
    };
}
