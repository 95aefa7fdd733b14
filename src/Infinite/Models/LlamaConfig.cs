namespace Infinite.Models;

/// <summary>How RoPE pairs a head's elements (mirrors <c>inf_rope_style</c>).</summary>
public enum RopeStyle
{
    /// <summary>Rotates (2i, 2i+1): GGUF llama files (their converter permutes the q/k rows).</summary>
    Interleaved = 0,
    /// <summary>Rotates (i, i + headDim/2): Hugging Face checkpoints.</summary>
    Half = 1,
}

/// <summary>RoPE frequency scaling (mirrors <c>inf_rope_scaling</c>).</summary>
public enum RopeScalingKind
{
    None = 0,
    /// <summary>Positions divided by <see cref="RopeScaling.Factor"/>.</summary>
    Linear = 1,
    /// <summary>Llama 3.1's piecewise rule over wavelengths.</summary>
    Llama3 = 2,
}

/// <summary>RoPE scaling parameters; <see cref="None"/> when the model has none.</summary>
public sealed record RopeScaling(
    RopeScalingKind Kind,
    float Factor = 1f,
    float LowFreqFactor = 1f,
    float HighFreqFactor = 4f,
    int OriginalContext = 8192)
{
    public static RopeScaling None { get; } = new(RopeScalingKind.None);
}

/// <summary>Shape and hyper-parameters of a Llama-family model (Llama 2, Llama 3, Mistral).</summary>
public sealed record LlamaConfig(
    int VocabSize,
    int Dim,
    int Layers,
    int QHeads,
    int KvHeads,
    int HeadDim,
    int FfnDim,
    float NormEps,
    float RopeTheta,
    RopeStyle RopeStyle,
    RopeScaling RopeScaling,
    bool TiedEmbeddings,
    int ContextLength)
{
    /// <summary>Query heads per KV head (GQA group size).</summary>
    public int GroupSize => QHeads / KvHeads;

    /// <summary>Parameter count of the weights (embedding, layers, final norm, LM head unless tied).</summary>
    public long ParameterCount
    {
        get
        {
            long perLayer = 2L * Dim                                   // two RMSNorm weights
                + (long)Dim * QHeads * HeadDim * 2                     // q and output projections
                + (long)Dim * KvHeads * HeadDim * 2                    // k and v projections
                + 3L * Dim * FfnDim;                                   // gate, up, down
            long embedding = (long)VocabSize * Dim;
            return embedding + Layers * perLayer + Dim + (TiedEmbeddings ? 0 : embedding);
        }
    }
}
