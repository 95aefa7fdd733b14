namespace Infinite.Cluster;

/// <summary>Settings of an <see cref="RManager"/>.</summary>
public sealed record RManagerOptions
{
    /// <summary>
    /// Fraction of the instance's pages it may lend to requests homed elsewhere (0 .. 1). Default 0.5: a creditor
    /// always keeps at least half its pool for its own requests, so lending can at worst halve its own batch headroom,
    /// while one request can still reach <c>P * (1 + (N - 1) / 2)</c> pages on N instances of P pages (2.5 pools on
    /// 4 instances, 16.5 on 32) instead of the single pool it gets without borrowing.
    /// </summary>
    public double LendingCap { get; init; } = 0.5;

    /// <summary>
    /// When true, an instance with no demand of its own (no request homed on it and none waiting for it, see
    /// <see cref="RManager.WaitingRequests"/>) lends all its free pages, not only <see cref="LendingCap"/> of them: the
    /// cap exists to protect the lender's own requests, and an idle instance has none. Pages lent while idle are not
    /// recalled; once the instance has demand again it lends nothing more until its loans fall below the cap, and its
    /// own requests borrow elsewhere like any debtor's. This is what lets one request use (nearly) all of a cluster's
    /// memory when it runs alone.
    /// Default false (the strict cap); the simulator's paper setup turns it on.
    /// </summary>
    public bool LendAllWhenIdle { get; init; }

    /// <summary>Pages the cap allows lending from a pool of <paramref name="pages"/>.</summary>
    public int LendCapPages(int pages)
    {
        if (double.IsNaN(LendingCap) || LendingCap < 0 || LendingCap > 1)
            throw new ArgumentOutOfRangeException(nameof(LendingCap), LendingCap, "The lending cap is a fraction in [0, 1].");
        return (int)Math.Floor(LendingCap * pages);
    }
}
