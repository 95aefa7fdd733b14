namespace Infinite.Cluster;

/// <summary>
/// Predicts the time of one step of one instance (the paper's <c>T(b, S) = W(b)/f(b) + sum_r S_r/g(S)</c> plus the
/// query/partial exchange). The greedy placement policy and the cluster simulator share it, so calibrate it once from
/// benchmarks.
/// </summary>
public interface ICostModel
{
    /// <summary>Seconds the instance needs for one step with this load (0 for an idle one).</summary>
    double StepSeconds(InstanceLoad load);
}
