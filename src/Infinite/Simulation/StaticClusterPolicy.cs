using Infinite.Cluster;

namespace Infinite.Simulation;

/// <summary>
/// The vLLM-M baseline: independent instances, each request bound to its home for life (the real
/// <see cref="StaticPolicy"/> inside the real <see cref="ClusterPageSpace"/>); a request whose KV does not fit one
/// instance is rejected.
/// </summary>
public sealed class StaticClusterPolicy : ClusterSpacePolicy
{
    public override string Name => "static";
    public override string Description => "vLLM-M: independent instances, a request bound to one (Cluster.StaticPolicy)";

    protected override IPlacementPolicy CreatePolicy(ClusterLayout layout) => new StaticPolicy();
}
