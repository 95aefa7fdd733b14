using Infinite.Cluster;

namespace Infinite.Simulation;

/// <summary>What a <see cref="SinglePolicy"/> stands for.</summary>
public enum PooledMode
{
    /// <summary><c>single</c>: vLLM-S, one tensor-parallel instance over every GPU, priced as it runs.</summary>
    Single,

    /// <summary><c>ideal</c>: the upper bound of any placement policy; weights stored and read once.</summary>
    Ideal,

    /// <summary><c>ideal-instances</c>: the upper bound of any placement over the cluster's N independent instances;
    /// N copies of the weights stored and read.</summary>
    IdealInstances,
}

/// <summary>
/// The vLLM-S baseline: one instance spanning every GPU with tensor parallelism, so one big KV pool (any request
/// that fits all the memory is served) but every layer pays two all-reduces over the interconnect, across nodes over
/// InfiniBand when the cluster has more than one node.
/// <para>
/// With <see cref="PooledMode.Ideal"/> it is the <c>ideal</c> policy instead: the same pooled instance, scheduler and
/// batching, priced with <see cref="RooflineCostModel.IdealParallelism"/>. It is an upper bound on what any placement
/// policy (static, borrowing, or a better one) can reach under this cost model, because each of its relaxations can
/// only make a step cheaper or a batch larger than any arrangement of the same GPUs into instances gets:
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
/// With <see cref="PooledMode.IdealInstances"/> it is <c>ideal-instances</c>: the same bound with the two relaxations
/// no placement of N independent instances can use taken back, so it bounds static, borrowing and any other policy
/// over those instances, and lies between them and <c>ideal</c>:
/// </para>
/// <list type="bullet">
/// <item>Memory: the pool is exactly N x one instance's KV pages, what the instances have after their own weight copy
/// (<see cref="ClusterLayout.KvPagesPerInstance"/>), not the memory of one copy for all. Any placement's pages still
/// fit (it is their sum), and one pool lets any request use any page, so it is still a relaxation; it is tighter than
/// <c>ideal</c> by the N - 1 extra copies (13B on 32 A100: 32 x 26 GB).</item>
/// <item>Weights: every step reads N copies of the weights (<see cref="ClusterLayout.WeightCopies"/>), spread over
/// all the GPUs, so its weight time is one instance's, W / (g x bandwidth), as if the N instances stepped together
/// each over its own copy. A real instance pays at least that in every step it takes; <c>ideal</c> pays it once for
/// all, N times less.</item>
/// <item>Communication, balance and kernel floor as <c>ideal</c>: no exchange and no migration (every page is local to
/// the one pool), no tensor-parallel all-reduce inside an instance (70B's 4-GPU instances pay it in static and
/// borrowing), no GEMM floor, and the batch's FLOPs and KV bytes split evenly over all the GPUs: at least as cheap
/// as the most loaded instance of any split of the same batch (max(f, c) is convex, so the even split of a sum is
/// below the largest part), including a request's own GEMMs and attention split over instances, which none of them
/// can do (the drain at the end of a saturated trace, when a few instances still work, is where this counts).</item>
/// </list>
/// <para>
/// The step token budget and running slots scale with the instances it replaces, as for <c>single</c>, so one step
/// carries what all the instances' steps carry together. The bounds are of this model only: costs the roofline does
/// not have (scheduling overheads, measured kernel curves) are outside them.
/// </para>
/// </summary>
public sealed class SinglePolicy : SimulationPolicy
{
    /// <summary>Which pooled instance: vLLM-S as it runs, or one of the two upper bounds.</summary>
    public PooledMode Mode { get; init; }

    /// <summary>Priced with free, perfectly balanced parallelism (<c>ideal</c> or <c>ideal-instances</c>).</summary>
    public bool Ideal => Mode != PooledMode.Single;

    public override string Name => Mode switch
    {
        PooledMode.Ideal => "ideal",
        PooledMode.IdealInstances => "ideal-instances",
        _ => "single",
    };

    public override string Description => Mode switch
    {
        PooledMode.Ideal => "upper bound: one pooled instance over all GPUs, weights once, free and perfectly balanced parallelism",
        PooledMode.IdealInstances => "upper bound of independent instances: one pool of N instances' KV pages, N weight copies read per step, free and perfectly balanced parallelism",
        _ => "vLLM-S: one tensor-parallel instance over all GPUs, one KV pool",
    };

    public override ClusterLayout Arrange(ClusterLayout layout)
    {
        ArgumentNullException.ThrowIfNull(layout);
        if (Mode != PooledMode.IdealInstances)
            return layout with { GpusPerInstance = layout.Gpus };
        // N instances pooled: their pages exactly (each after its own weight copy), and their N weight copies.
        long pages = (long)layout.Instances * layout.PagesPerInstance;
        if (pages > int.MaxValue)
            throw new ArgumentException($"{layout.Instances} instances of {layout.PagesPerInstance} KV pages do not fit one pool of int pages.");
        return layout with
        {
            GpusPerInstance = layout.Gpus,
            KvPagesPerInstance = (int)pages,
            WeightCopies = layout.Instances * layout.WeightCopies,
        };
    }

    public override IKvPageSpace CreatePageSpace(ClusterLayout layout)
    {
        ArgumentNullException.ThrowIfNull(layout);
        return new PooledPageSpace(layout.PagesPerInstance);
    }

    public override RooflineCostModel CreateCostModel(ClusterLayout layout) =>
        new(layout) { IdealParallelism = Ideal };
}
