namespace Infinite.Native;

/// <summary>
/// Shape of a paged KV cache: per layer, K and V <c>[Pages][KvHeads][PageSize][HeadDim]</c> of
/// <see cref="DataType"/>, plus key min/max summaries per <see cref="LogicalPageSize"/> tokens
/// (0: none) for sparse page selection. The native library validates it and names a bad field.
/// </summary>
public sealed record PagePoolConfig(
    int Layers,
    int KvHeads,
    int HeadDim,
    int PageSize,
    int Pages,
    DataType DataType = DataType.F32,
    int LogicalPageSize = 0)
{
    /// <summary>Optional [Layers]: the KV heads each layer stores (0 .. KvHeads; null: KvHeads in every layer), so a
    /// pool can keep only some heads of each layer (the retrieval heads, or the streaming heads' ring).</summary>
    public IReadOnlyList<int>? LayerKvHeads { get; init; }

    /// <summary>Storage of the key min/max summaries: 32 (float32, exact), 16 (bfloat16) or 8 (int8 with a scale per
    /// logical page and head); compact forms are rounded outward, so a page's selection score stays an upper bound.</summary>
    public int SummaryBits { get; init; } = 32;

    /// <summary>KV heads <paramref name="layer"/> stores.</summary>
    public int HeadsOf(int layer) => LayerKvHeads is { } heads ? heads[layer] : KvHeads;

    /// <summary>Values of one token of one layer: KvHeads * HeadDim.</summary>
    public int TokenWidth => KvHeads * HeadDim;

    /// <summary>Floats of one page of one layer, for K or for V: KvHeads * PageSize * HeadDim.</summary>
    public int PageFloats => KvHeads * PageSize * HeadDim;

    /// <summary>Floats of one page's summary: KvHeads * (PageSize / LogicalPageSize) * 2 * HeadDim.</summary>
    public int SummaryFloats => LogicalPageSize == 0 ? 0 : KvHeads * (PageSize / LogicalPageSize) * 2 * HeadDim;

    /// <summary><see cref="TokenWidth"/>, <see cref="PageFloats"/> and <see cref="SummaryFloats"/> of one layer
    /// (its <see cref="HeadsOf"/> heads).</summary>
    public int TokenWidthOf(int layer) => HeadsOf(layer) * HeadDim;

    public int PageFloatsOf(int layer) => HeadsOf(layer) * PageSize * HeadDim;

    public int SummaryFloatsOf(int layer) => LogicalPageSize == 0 ? 0 : HeadsOf(layer) * (PageSize / LogicalPageSize) * 2 * HeadDim;

    internal static unsafe inf_page_pool_config Empty() => new() { size = (uint)sizeof(inf_page_pool_config) };

    internal unsafe inf_page_pool_config ToNative() => new()
    {
        size = (uint)sizeof(inf_page_pool_config),
        dtype = DataType,
        layers = Layers,
        kv_heads = KvHeads,
        head_dim = HeadDim,
        page_size = PageSize,
        pages = Pages,
        logical_page_size = LogicalPageSize,
        summary_bits = SummaryBits,
    };

    internal static unsafe PagePoolConfig FromNative(in inf_page_pool_config c) =>
        new(c.layers, c.kv_heads, c.head_dim, c.page_size, c.pages, c.dtype, c.logical_page_size)
        {
            // The pool's own copy, valid while it lives: copied out here.
            LayerKvHeads = c.layer_kv_heads == null ? null : new ReadOnlySpan<int>(c.layer_kv_heads, c.layers).ToArray(),
            SummaryBits = c.summary_bits == 0 ? 32 : c.summary_bits,
        };
}
