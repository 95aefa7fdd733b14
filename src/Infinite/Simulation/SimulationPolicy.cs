using Infinite.Cluster;

namespace Infinite.Simulation;

/// <summary>
/// A scheduling policy as the simulator runs it: how the cluster is arranged into instances, the page space that
/// places requests and hands out their pages (the real scheduler's <see cref="IKvPageSpace"/>), and, for policies
/// that migrate, the gManager's plan and the two-phase move. Implementations wrap the real Cluster types; they add
/// no scheduling logic of their own.
/// </summary>
public abstract class SimulationPolicy
{
    /// <summary>Short name for the command line and reports.</summary>
    public abstract string Name { get; }

    /// <summary>One line for reports: what the policy is and which baseline it stands for.</summary>
    public abstract string Description { get; }

    /// <summary>The instances this policy runs on the GPUs of <paramref name="layout"/> (the single-instance
    /// baseline makes one instance of all of them).</summary>
    public virtual ClusterLayout Arrange(ClusterLayout layout) => layout;

    /// <summary>The cost model that prices the steps of the arranged layout (the roofline; the ideal bound relaxes
    /// it).</summary>
    public virtual RooflineCostModel CreateCostModel(ClusterLayout layout) => new(layout);

    /// <summary>A fresh page space for one run over the arranged layout.</summary>
    public abstract IKvPageSpace CreatePageSpace(ClusterLayout layout);

    /// <summary>True when the simulator should ask for a move plan (see <see cref="SimulationOptions.PlanEverySteps"/>).</summary>
    public virtual bool Plans => false;

    /// <summary>Tells the page space an instance's last step size (the rManager reports it in heartbeats).</summary>
    internal virtual void ReportBatch(IKvPageSpace space, int instance, int batchTokens)
    {
    }

    /// <summary>Tells the page space how many requests wait in an instance's own queue (per-instance dispatch): demand
    /// that keeps its lending cap on.</summary>
    internal virtual void ReportWaiting(IKvPageSpace space, int instance, int waiting)
    {
    }

    /// <summary>The gManager's move plan for the current placement and the waiting demand.</summary>
    internal virtual IReadOnlyList<PageMove> PlanMoves(IKvPageSpace space, Demand demand) => [];

    /// <summary>Carries out one move (reserve on the destination, copy, commit); the request's page table is
    /// rewritten in place. Returns the pages moved, 0 when the move no longer applies or the reservation is
    /// refused.</summary>
    internal virtual int TryMove(IKvPageSpace space, PageMove move) => 0;
}
