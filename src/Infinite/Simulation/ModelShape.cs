namespace Infinite.Simulation;

/// <summary>
/// The dimensions of a Llama-family transformer that decide its FLOPs and bytes per token: layer count, hidden and
/// FFN width, query and KV heads. The simulator never needs weights, only these shapes (Llama-2 figures from the
/// models' config.json files).
/// </summary>
public sealed record ModelShape
{
    public required string Name { get; init; }
    public required int Layers { get; init; }
    public required int Dim { get; init; }
    public required int QHeads { get; init; }
    public required int KvHeads { get; init; }
    public required int FfnDim { get; init; }
    public required int VocabSize { get; init; }
    public int HeadDim => Dim / QHeads;

    /// <summary>Llama-2-7B: 32 layers, 4096 wide, 32 heads (MHA), FFN 11008.</summary>
    public static ModelShape Llama2_7B { get; } = new() { Name = "7b", Layers = 32, Dim = 4096, QHeads = 32, KvHeads = 32, FfnDim = 11008, VocabSize = 32000 };
    /// <summary>Llama-2-13B: 40 layers, 5120 wide, 40 heads (MHA), FFN 13824.</summary>
    public static ModelShape Llama2_13B { get; } = new() { Name = "13b", Layers = 40, Dim = 5120, QHeads = 40, KvHeads = 40, FfnDim = 13824, VocabSize = 32000 };
    /// <summary>Llama-2-70B: 80 layers, 8192 wide, 64 query heads over 8 KV heads (GQA), FFN 28672.</summary>
    public static ModelShape Llama2_70B { get; } = new() { Name = "70b", Layers = 80, Dim = 8192, QHeads = 64, KvHeads = 8, FfnDim = 28672, VocabSize = 32000 };

    /// <summary>The 12M-parameter Llama of docs/PERFORMANCE.md's CPU model bench (dim 512, 4 layers, 8 query / 2 KV
    /// heads of 64, FFN 1536, vocab 512): the shape the CPU profile is calibrated against.</summary>
    public static ModelShape Demo12M { get; } = new() { Name = "demo-12m", Layers = 4, Dim = 512, QHeads = 8, KvHeads = 2, FfnDim = 1536, VocabSize = 512 };

    public static IReadOnlyList<ModelShape> Known { get; } = [Llama2_7B, Llama2_13B, Llama2_70B, Demo12M];

    /// <summary>Weights of one layer's projections and MLP (what a token's GEMMs multiply by).</summary>
    public long LayerParameters =>
        (long)Dim * (QHeads * HeadDim) // q
        + 2L * Dim * (KvHeads * HeadDim) // k, v
        + (long)(QHeads * HeadDim) * Dim // o
        + 3L * Dim * FfnDim; // gate, up, down

    /// <summary>Every weight: layers plus embedding and output head (norms are negligible).</summary>
    public long Parameters => Layers * LayerParameters + 2L * VocabSize * Dim;

    /// <summary>KV elements one token adds over all layers (K and V).</summary>
    public long KvElementsPerToken => 2L * Layers * KvHeads * HeadDim;

    /// <summary>KV bytes per token at <paramref name="bytesPerElement"/> per element (bf16: 2).</summary>
    public double KvBytesPerToken(double bytesPerElement) => KvElementsPerToken * bytesPerElement;

    /// <summary>GEMM FLOPs of the transformer layers for one token (2 per multiply-add).</summary>
    public double LayerFlopsPerToken => 2.0 * Layers * LayerParameters;

    /// <summary>FLOPs of the output head for one logit row.</summary>
    public double HeadFlopsPerRow => 2.0 * Dim * VocabSize;

    /// <summary>
    /// Attention FLOPs (QK^T and PV, all layers) for <paramref name="queries"/> consecutive query tokens that start at
    /// position <paramref name="start"/> and attend causally: each query at position p sees p + 1 keys.
    /// </summary>
    public double AttentionFlops(long start, long queries)
    {
        // sum over p = start .. start+queries-1 of (p + 1) keys
        double keys = queries * (double)start + queries * (queries + 1) / 2.0;
        return 4.0 * Layers * QHeads * HeadDim * keys;
    }

    /// <summary>Bytes of one token's activation vector (bf16), the unit of tensor-parallel all-reduces.</summary>
    public double ActivationBytesPerToken => 2.0 * Dim;

    /// <summary>Bytes of one token's query vectors for one layer (bf16), sent to a creditor.</summary>
    public double QueryBytesPerTokenLayer => 2.0 * QHeads * HeadDim;

    /// <summary>Bytes of one token's partial result for one layer: o in f32 plus the log-sum-exp per head.</summary>
    public double PartialBytesPerTokenLayer => 4.0 * QHeads * HeadDim + 4.0 * QHeads;

    /// <summary>Looks a shape up by name ("7b", "llama-2-13b", "70B").</summary>
    /// <exception cref="ArgumentException">The name is not a known model.</exception>
    public static ModelShape Parse(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        string key = name.Trim().ToLowerInvariant();
        foreach (ModelShape m in Known)
        {
            if (key == m.Name || key.EndsWith("-" + m.Name, StringComparison.Ordinal))
                return m;
        }
        throw new ArgumentException($"Unknown model '{name}': expected one of {string.Join(", ", Known.Select(k => k.Name))}.", nameof(name));
    }
}
