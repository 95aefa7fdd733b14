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

    /// <summary>Pages the cap allows lending from a pool of <paramref name="pages"/>.</summary>
    public int LendCapPages(int pages)
    {
        if (double.IsNaN(LendingCap) || LendingCap < 0 || LendingCap > 1)
            throw new ArgumentOutOfRangeException(nameof(LendingCap), LendingCap, "The lending cap is a fraction in [0, 1].");
        return (int)Math.Floor(LendingCap * pages);
    }
}
