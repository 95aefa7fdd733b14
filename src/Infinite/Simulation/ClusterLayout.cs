namespace Infinite.Simulation;

/// <summary>
/// Which GPUs form which instance, and how many KV pages each instance has. An instance is a tensor-parallel group of
/// <see cref="GpusPerInstance"/> consecutive GPUs (1 for Llama-2-7B/13B on an A100-80GB; 70B's 140 GB of bf16 weights
/// need 4). Instance i holds GPUs <c>i * GpusPerInstance ..</c>; GPUs fill nodes in order, so an instance never
/// straddles a node unless it is larger than one.
/// </summary>
public sealed record ClusterLayout
{
    public required ModelShape Model { get; init; }
    public required DeviceProfile Device { get; init; }
    public required Interconnect Interconnect { get; init; }
    public required int Gpus { get; init; }
    public required int GpusPerInstance { get; init; }
    /// <summary>Tokens per KV page (the unit of placement and migration).</summary>
    public int PageTokens { get; init; } = 64;

    public int Instances => Gpus / GpusPerInstance;

    /// <summary>Bytes of one page over all layers.</summary>
    public double PageBytes => PageTokens * Model.KvBytesPerToken(Device.KvBytesPerElement);

    /// <summary>Weight bytes of the whole model (split over the instance's GPUs).</summary>
    public double WeightBytes => Model.Parameters * Device.WeightBytesPerParameter;

    /// <summary>Bytes an instance can give the KV cache: usable memory of its GPUs minus the weights.</summary>
    public double KvBytesPerInstance => GpusPerInstance * Device.MemoryBytes * Device.UsableMemoryFraction - WeightBytes;

    /// <summary>
    /// Copies of the weights the instance reads per step, spread over its GPUs. 1 for every real instance; the
    /// <c>ideal-instances</c> bound (<see cref="SinglePolicy"/>) pools N independent instances into one and keeps
    /// their N copies, so each of its steps reads N times the weights, as N instances stepping together would.
    /// </summary>
    public int WeightCopies { get; init; } = 1;

    /// <summary>KV pages of one instance when they are known rather than derived from the device's memory (a real
    /// engine's pools, as the CPU validation replays them); null: from <see cref="KvBytesPerInstance"/>.</summary>
    public int? KvPagesPerInstance { get; init; }

    /// <summary>KV pages of one instance.</summary>
    public int PagesPerInstance => KvPagesPerInstance
        ?? (int)Math.Min(int.MaxValue / Math.Max(1, Instances), Math.Floor(KvBytesPerInstance / PageBytes));

    /// <summary>Tokens of KV one instance holds.</summary>
    public long TokensPerInstance => (long)PagesPerInstance * PageTokens;

    /// <summary>The node of instance <paramref name="instance"/> (of its first GPU).</summary>
    public int NodeOf(int instance) => instance * GpusPerInstance / Interconnect.GpusPerNode;

    /// <summary>The link between two instances: NVLink inside a node, InfiniBand across, scaled by the GPUs of an
    /// instance (each GPU sends its own heads' share over its own link).</summary>
    public Link Between(int a, int b)
    {
        Link l = NodeOf(a) == NodeOf(b) ? Interconnect.IntraNode : Interconnect.InterNode;
        return l with { Bandwidth = l.Bandwidth * GpusPerInstance };
    }

    /// <summary>Smallest tensor-parallel degree (a power of two dividing a node) that fits the weights with at least
    /// a quarter of the memory left for KV.</summary>
    public static int DefaultGpusPerInstance(ModelShape model, DeviceProfile device)
    {
        double weights = model.Parameters * device.WeightBytesPerParameter;
        for (int g = 1; g <= 64; g *= 2)
        {
            if (g * device.MemoryBytes * device.UsableMemoryFraction - weights >= 0.25 * g * device.MemoryBytes)
                return g;
        }
        return 64;
    }

    /// <summary>Throws when the layout cannot run: GPUs not a multiple of the instance size, no room for KV.</summary>
    public void Validate()
    {
        Interconnect.Validate();
        if (Gpus < 1)
            throw new ArgumentException($"The cluster needs at least one GPU, got {Gpus}.");
        if (GpusPerInstance < 1 || Gpus % GpusPerInstance != 0)
            throw new ArgumentException($"{Gpus} GPUs do not split into instances of {GpusPerInstance}.");
        if (WeightCopies < 1)
            throw new ArgumentException($"An instance reads at least one copy of the weights, got {WeightCopies}.");
        if (PageTokens < 1)
            throw new ArgumentException($"A page must hold at least one token, got {PageTokens}.");
        if (PagesPerInstance < 1)
            throw new ArgumentException(
                $"Model {Model.Name} ({WeightBytes / 1e9:0.#} GB of weights) leaves no KV memory on {GpusPerInstance} x {Device.Name}.");
    }
}
