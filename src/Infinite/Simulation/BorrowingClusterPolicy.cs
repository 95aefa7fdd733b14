using Infinite.Cluster;

namespace Infinite.Simulation;

/// <summary>
/// Infinite-LLM: the real <see cref="BorrowingPolicy"/> (greedy debtor/creditor placement) planning with the same
/// roofline cost model that prices the simulated steps, so the gManager's predictions and the simulated outcome
/// agree; requests borrow pages on creditors when their home is full, and the gManager migrates pages periodically.
/// </summary>
public sealed class BorrowingClusterPolicy : ClusterSpacePolicy
{
    /// <summary>Greedy thresholds; the exchange bytes per remote part are set from the model shape.</summary>
    public BorrowingOptions Options { get; init; } = new();

    /// <summary>Growth borrows only from instances below the creditor utilisation threshold
    /// (<see cref="BorrowingOptions.BorrowOnlyFromCreditors"/>).</summary>
    public bool BorrowOnlyFromCreditors { get; init; }

    public override string Name => "borrowing";
    public override string Description => "Infinite-LLM: borrowing and greedy migration (Cluster.BorrowingPolicy)";
    public override bool Plans => true;

    protected override IPlacementPolicy CreatePolicy(ClusterLayout layout)
    {
        ArgumentNullException.ThrowIfNull(layout);
        ModelShape m = layout.Model;
        long exchange = (long)Math.Ceiling(m.Layers * (m.QueryBytesPerTokenLayer + m.PartialBytesPerTokenLayer));
        return new BorrowingPolicy(new RooflineCostModel(layout), Options with
        {
            ExchangeBytesPerRemotePart = exchange,
            BorrowOnlyFromCreditors = Options.BorrowOnlyFromCreditors || BorrowOnlyFromCreditors,
        });
    }
}
