using Infinite.Cluster;

namespace Infinite.Simulation;

/// <summary>
/// The vLLM-S baseline: one instance spanning every GPU with tensor parallelism, so one big KV pool (any request
/// that fits all the memory is served) but every layer pays two all-reduces over the interconnect, across nodes over
/// InfiniBand when the cluster has more than one node.
/// <para>
/// With <see cref="Ideal"/> it is the <c>ideal</c> policy instead: the same pooled instance, scheduler and batching,
/// priced with <see cref="RooflineCostModel.IdealParallelism"/>. It is an upper bound on what any placement policy
/// (static, borrowing, or a better one) can reach under this cost model, because each of its relaxations can only
/// make a step cheaper or a batch larger than any arrangement of the same GPUs into instances gets:
/// </para>
/// <list type="bullet">
/// <item>Memory: the weights are stored once, so the pool holds every byte a split into instances gives the KV cache
/// plus the weight copies the split needs; any placement's pages fit in it.</item>
/// <item>Weights: a step reads each weight once for the whole cluster's batch, where independent instances read
/// their own copy once per step each.</item>
/// <item>Communication: no all-reduce, no query/partial exchange (there are no remote parts), no page migration,
/// where every other policy pays what it uses of these.</item>
/// <item>Balance: the step's FLOPs and bytes divide exactly over the GPUs, priced at one GPU's rates (the same peaks
/// and efficiencies as every policy), and no GEMM kernel has the launch-sized floor; real instances wait for their
/// most loaded GPU, and a request's GEMMs run on its own instance only.</item>
/// </list>
/// <para>
/// The step token budget and running slots scale with the instances it replaces, as for <c>single</c>, so one step
/// carries what all the instances' steps carry together. The bound is of this model only: costs the roofline does not
/// have (scheduling overheads, measured kernel curves) are outside it.
/// </para>
/// </summary>
public sealed class SinglePolicy : SimulationPolicy
{
    /// <summary>Price the pooled instance with free, perfectly balanced parallelism: the <c>ideal</c> upper bound.</summary>
    public bool Ideal { get; init; }

    public override string Name => Ideal ? "ideal" : "single";
    public override string Description => Ideal
        ? "upper bound: one pooled instance over all GPUs, weights once, free and perfectly balanced parallelism"
        : "vLLM-S: one tensor-parallel instance over all GPUs, one KV pool";

    public override ClusterLayout Arrange(ClusterLayout layout)
    {
        ArgumentNullException.ThrowIfNull(layout);
        return layout with { GpusPerInstance = layout.Gpus };
    }

    public override IKvPageSpace CreatePageSpace(ClusterLayout layout)
    {
        ArgumentNullException.ThrowIfNull(layout);
        return new PooledPageSpace(layout.PagesPerInstance);
    }

    public override RooflineCostModel CreateCostModel(ClusterLayout layout) =>
        new(layout) { IdealParallelism = Ideal };
}
