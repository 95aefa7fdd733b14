using Infinite.Cluster;

namespace Infinite.Simulation;

/// <summary>
/// The vLLM-S baseline: one instance spanning every GPU with tensor parallelism, so one big KV pool (any request
/// that fits all the memory is served) but every layer pays two all-reduces over the interconnect, across nodes over
/// InfiniBand when the cluster has more than one node.
/// </summary>
public sealed class SinglePolicy : SimulationPolicy
{
    public override string Name => "single";
    public override string Description => "vLLM-S: one tensor-parallel instance over all GPUs, one KV pool";

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
}
