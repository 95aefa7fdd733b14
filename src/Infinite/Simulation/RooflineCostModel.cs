using Infinite.Cluster;

namespace Infinite.Simulation;

/// <summary>
/// Step time of one instance from the FLOPs and bytes of its batch (a roofline: each part takes the longer of its
/// compute time at the reachable FLOP rate and its memory time at the reachable bandwidth).
/// <list type="bullet">
/// <item>Non-attention layers: every weight is read once per step (bytes) and each row costs 2 FLOPs per weight, so
/// small batches are bandwidth-bound and get faster per token as the batch grows: the paper's W(b)/f(b).</item>
/// <item>Attention (MicroAttention over pages): reads each KV byte once per step and costs 4 FLOPs per head
/// dimension per visible key, so decode is bandwidth-bound on the context: the paper's S/g(S).</item>
/// <item>Remote parts: the creditor's attention over its pages plus, per layer, the query out and (o, lse) back; the
/// parts run in parallel on their creditors but their messages leave and reach the home over its own links, so their
/// bytes add up per link kind (NVLink, InfiniBand). The remote part overlaps the local attention (the slower counts).</item>
/// <item>Tensor parallelism (an instance of several GPUs, or vLLM-S over all of them): work splits over the GPUs and
/// each layer adds two all-reduces of the batch's activations (ring bandwidth term; latency of a ring inside a node
/// and of a tree across nodes, as NCCL picks for small messages); and no GEMM kernel takes less than the device's
/// <see cref="DeviceProfile.MinKernelSeconds"/>, which a GEMM split many ways hits.</item>
/// <item>Page migration runs on the links beside the step and only costs time when it takes longer than the step.</item>
/// <item><see cref="IdealParallelism"/> drops the tensor-parallel costs (all-reduces, kernel floor) for the
/// <c>ideal</c> and <c>ideal-instances</c> upper bounds; <see cref="ClusterLayout.WeightCopies"/> makes a pooled
/// step read N copies of the weights (<c>ideal-instances</c>).</item>
/// </list>
/// </summary>
public sealed class RooflineCostModel : ICostModel
{
    public RooflineCostModel(ClusterLayout layout, int? gpusPerInstance = null)
    {
        ArgumentNullException.ThrowIfNull(layout);
        Layout = layout;
        Gpus = gpusPerInstance ?? layout.GpusPerInstance;
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(Gpus);
        ModelShape m = layout.Model;
        StreamedWeightBytes = ((double)m.Layers * m.LayerParameters + (double)m.VocabSize * m.Dim) * layout.Device.WeightBytesPerParameter;
    }

    public ClusterLayout Layout { get; }
    /// <summary>GPUs of one instance (the tensor-parallel degree this model prices).</summary>
    public int Gpus { get; }

    /// <summary>
    /// Prices the instance as an ideal pool of its GPUs (the <c>ideal</c> policy, an upper bound): the step's FLOPs and
    /// bytes split perfectly over the GPUs as before, but tensor parallelism communicates for free (no all-reduce) and
    /// no GEMM kernel has a minimum time, so a GEMM split g ways takes exactly 1/g of one GPU's time. Everything else
    /// (roofline per part, per-layer overhead) is unchanged, so the bound is of the same model, not a different one.
    /// </summary>
    public bool IdealParallelism { get; init; }

    /// <summary>Weights one copy of the model streams per step: the layers and the output head (the embedding is a
    /// lookup). A step reads <see cref="ClusterLayout.WeightCopies"/> copies (1 but for the <c>ideal-instances</c>
    /// bound).</summary>
    public double StreamedWeightBytes { get; }

    private DeviceProfile Device => Layout.Device;
    private ModelShape Model => Layout.Model;

    /// <summary>FLOPs of the non-attention layers for <paramref name="tokens"/> rows and <paramref name="logitRows"/>
    /// output-head rows.</summary>
    public double GemmFlops(long tokens, int logitRows) => tokens * Model.LayerFlopsPerToken + logitRows * Model.HeadFlopsPerRow;

    /// <summary>GEMM kernels per layer: fused QKV, output projection, fused gate/up, down.</summary>
    public const int GemmKernelsPerLayer = 4;

    /// <summary>Seconds of the non-attention layers (0 when the batch is empty): the roofline, but at least
    /// <see cref="DeviceProfile.MinKernelSeconds"/> per GEMM kernel (a 7B layer split 32 ways is a few MB per GPU,
    /// which streams in less time than a kernel takes to launch and finish; no floor under
    /// <see cref="IdealParallelism"/>).</summary>
    public double GemmSeconds(long tokens, int logitRows)
    {
        if (tokens <= 0)
            return 0;
        double compute = GemmFlops(tokens, logitRows) / (Gpus * Device.PeakFlops * Device.GemmEfficiency);
        double memory = StreamedWeightBytes * Layout.WeightCopies / (Gpus * Device.MemoryBandwidth * Device.MemoryEfficiency);
        double floor = IdealParallelism ? 0 : Model.Layers * GemmKernelsPerLayer * Device.MinKernelSeconds;
        return Math.Max(Math.Max(compute, memory), floor);
    }

    /// <summary>Seconds of attention with <paramref name="flops"/> FLOPs over <paramref name="bytes"/> KV bytes on an
    /// instance of <paramref name="gpus"/> GPUs.</summary>
    public double AttentionSeconds(double flops, double bytes, int gpus)
    {
        if (flops <= 0 && bytes <= 0)
            return 0;
        double compute = flops / (gpus * Device.PeakFlops * Device.AttentionEfficiency);
        double memory = bytes / (gpus * Device.MemoryBandwidth * Device.MemoryEfficiency);
        return Math.Max(compute, memory);
    }

    /// <summary>
    /// Two all-reduces per layer of the batch's activations over the instance's GPUs (0 for one GPU). Bandwidth:
    /// a ring over NVLink inside a node and, across nodes, hierarchical as NCCL does it (reduce-scatter and all-gather
    /// over NVLink, and an all-reduce of each GPU's 1/g share across the nodes over the GPUs' own InfiniBand NICs in
    /// parallel). Latency: NCCL has no intra-node tree, so inside a node a ring pays 2(g - 1) NVLink hops (nccl-tests
    /// measure 33.7 us for an 8-byte ring all-reduce on one DGX A100, NVIDIA/nccl-tests#123); across nodes a tree pays
    /// 2 ceil(log2 nodes) InfiniBand hops on top. 0 under <see cref="IdealParallelism"/>.
    /// </summary>
    public double AllReduceSeconds(long tokens)
    {
        if (Gpus <= 1 || tokens <= 0 || IdealParallelism)
            return 0;
        Interconnect ic = Layout.Interconnect;
        double bytes = tokens * Model.ActivationBytesPerToken;
        int g = Math.Min(Gpus, ic.GpusPerNode);
        int nodes = (Gpus + g - 1) / g;
        double seconds = 2.0 * (g - 1) / g * bytes / ic.IntraNode.Bandwidth
            + 2.0 * (g - 1) * ic.IntraNode.LatencySeconds;
        if (nodes > 1)
        {
            seconds += 2.0 * (nodes - 1) / nodes * (bytes / g) / ic.InterNode.Bandwidth
                + 2.0 * Math.Ceiling(Math.Log2(nodes)) * ic.InterNode.LatencySeconds;
        }
        return 2.0 * Model.Layers * seconds;
    }

    /// <summary>Per-layer query out and partial back for <paramref name="queryTokens"/> rows over <paramref name="link"/>.</summary>
    public double ExchangeSeconds(double queryTokens, Link link)
    {
        if (queryTokens <= 0)
            return 0;
        return Model.Layers * (link.Seconds(queryTokens * Model.QueryBytesPerTokenLayer)
            + link.Seconds(queryTokens * Model.PartialBytesPerTokenLayer));
    }

    /// <summary>Prices one step of instance <paramref name="instance"/>.</summary>
    public StepCost Price(StepWork work, int instance)
    {
        ArgumentNullException.ThrowIfNull(work);
        double gemm = GemmSeconds(work.Tokens, work.LogitRows);
        double local = AttentionSeconds(work.LocalAttentionFlops, work.LocalAttentionBytes, Gpus);
        // Each part: its creditor's attention plus one latency each way per layer, in parallel across creditors; the
        // query and partial bytes of all parts queue on the home's links, NVLink and InfiniBand side by side.
        double slowest = 0, nvlinkBytesSeconds = 0, infinibandBytesSeconds = 0;
        bool any = false;
        for (int j = 0; j < work.RemoteQueryTokens.Length; j++)
        {
            double q = work.RemoteQueryTokens[j];
            if (q <= 0)
                continue;
            any = true;
            Link link = Layout.Between(instance, j);
            slowest = Math.Max(slowest, AttentionSeconds(work.RemoteFlops[j], work.RemoteBytes[j], Layout.GpusPerInstance)
                + Model.Layers * 2 * link.LatencySeconds);
            double bytesSeconds = Model.Layers * q * (Model.QueryBytesPerTokenLayer + Model.PartialBytesPerTokenLayer) / link.Bandwidth;
            if (Layout.NodeOf(instance) == Layout.NodeOf(j))
                nvlinkBytesSeconds += bytesSeconds;
            else
                infinibandBytesSeconds += bytesSeconds;
        }
        double remote = any ? slowest + Math.Max(nvlinkBytesSeconds, infinibandBytesSeconds) : 0;
        bool busy = work.Tokens > 0 || work.LocalAttentionBytes > 0;
        double overhead = busy ? Model.Layers * Device.LayerOverheadSeconds : 0;
        double migration = work.MigrationBytes > 0 ? work.MigrationLink.Seconds(work.MigrationBytes) : 0;
        return new StepCost(gemm, local, remote, AllReduceSeconds(work.Tokens), overhead, migration);
    }

    /// <summary>The paper's T(b, S) for a batch of decodes at context lengths <paramref name="contexts"/> on one
    /// instance with all KV local: what a placement policy evaluates when it weighs a move.</summary>
    public double DecodeStepSeconds(IReadOnlyList<long> contexts)
    {
        ArgumentNullException.ThrowIfNull(contexts);
        double flops = 0, bytes = 0;
        double kvPerToken = Model.KvBytesPerToken(Device.KvBytesPerElement);
        foreach (long s in contexts)
        {
            flops += Model.AttentionFlops(s - 1, 1);
            bytes += s * kvPerToken;
        }
        if (contexts.Count == 0)
            return 0;
        return GemmSeconds(contexts.Count, contexts.Count) + AttentionSeconds(flops, bytes, Gpus)
            + AllReduceSeconds(contexts.Count) + Model.Layers * Device.LayerOverheadSeconds;
    }

    /// <summary>
    /// The gManager's view of a step (<see cref="ICostModel"/>): <see cref="InstanceLoad.BatchTokens"/> decode rows,
    /// attention over every KV part held here, and the exchanges of its remote parts, priced by the same roofline as
    /// the simulated steps so the greedy policy plans with the costs the simulation then charges. Exchanges take the
    /// InfiniBand latency when the cluster spans nodes (the policy's view has no per-pair links).
    /// </summary>
    public double StepSeconds(InstanceLoad load)
    {
        ArgumentNullException.ThrowIfNull(load);
        if (load.BatchTokens <= 0 && load.KvTokens.Count == 0)
            return 0;
        double kvPerToken = Model.KvBytesPerToken(Device.KvBytesPerElement);
        double keys = 0;
        foreach (int tokens in load.KvTokens)
            keys += tokens;
        double flops = 4.0 * Model.Layers * Model.QHeads * Model.HeadDim * keys;
        double seconds = GemmSeconds(load.BatchTokens, load.BatchTokens) + AttentionSeconds(flops, keys * kvPerToken, Gpus)
            + AllReduceSeconds(load.BatchTokens) + Model.Layers * Device.LayerOverheadSeconds;
        if (load.RemoteParts > 0)
        {
            Interconnect ic = Layout.Interconnect;
            Link link = Layout.Gpus > ic.GpusPerNode ? ic.InterNode : ic.IntraNode;
            seconds += load.RemoteParts * 2.0 * Model.Layers * link.LatencySeconds
                + load.ExchangeBytes / (link.Bandwidth * Gpus);
        }
        return seconds;
    }
}
