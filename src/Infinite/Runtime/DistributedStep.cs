namespace Infinite.Runtime;

/// <summary>
/// An engine step split over the instances of a <see cref="DistributedExecutor"/>: one <see cref="InstancePlan"/>
/// per instance (idle ones included, so index = rank) and, for each logit row of the engine's plan in order, the
/// instance that computes it and its row there.
/// </summary>
internal sealed record DistributedStep(InstancePlan[] Plans, (int Instance, int Row)[] LogitSources)
{
    /// <summary>Instances with work this step (a home of some sequence, or a holder of some of its pages).</summary>
    public IEnumerable<int> Busy => Enumerable.Range(0, Plans.Length).Where(i => !Plans[i].IsIdle);
}
