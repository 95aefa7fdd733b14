namespace Infinite.Cluster;

/// <summary>Settings of <see cref="BorrowingPolicy"/>.</summary>
public sealed record BorrowingOptions
{
    /// <summary>Instances with fewer running requests are debtors. Default 32: with the default cost model f(32) is
    /// about 0.14, so extra batch there is nearly free throughput; tune it against the calibrated f(b).</summary>
    public int DebtorMaxBatch { get; init; } = 32;

    /// <summary>Instances whose memory utilisation is below this are creditors. Default 0.7: enough spare memory to
    /// lend (up to the rManager's cap) and still grow its own requests.</summary>
    public double CreditorMaxUtilisation { get; init; } = 0.7;

    /// <summary>When true, a growing request borrows only from creditors in the greedy plan's sense (utilisation below
    /// <see cref="CreditorMaxUtilisation"/>), not from any instance with lendable pages: borrowing an almost full
    /// instance's last pages only moves the shortage there, and every part costs its debtor a query/partial exchange
    /// per layer. Default false (any instance under its lending cap lends); the simulator's paper setup turns it on.</summary>
    public bool BorrowOnlyFromCreditors { get; init; }

    /// <summary>A move is applied only when it raises the pair's modelled throughput by more than this fraction.
    /// Default 0.01: migration is not free, and a margin keeps stale views from making moves that oscillate.</summary>
    public double MinRelativeGain { get; init; } = 0.01;

    /// <summary>Bytes of one request's query/partial exchange per step (q out, o and lse back, all layers). Default
    /// 524288: LLaMA2-7B, 32 layers of 4096 fp16 values each way.</summary>
    public long ExchangeBytesPerRemotePart { get; init; } = 524_288;

    /// <summary>Greedy rounds per plan at most (each round tries every debtor once). Default 16.</summary>
    public int MaxRounds { get; init; } = 16;

    /// <summary>Move sizes k tried one by one per (request, creditor) pair; larger ranges are searched coarse to fine
    /// with this many grid points. Default 256: exact for pools of a few hundred pages, a few hundred cost-model
    /// evaluations per pair beyond.</summary>
    public int ExhaustiveSearchLimit { get; init; } = 256;

    internal void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfNegative(DebtorMaxBatch, nameof(DebtorMaxBatch));
        if (double.IsNaN(CreditorMaxUtilisation) || CreditorMaxUtilisation < 0 || CreditorMaxUtilisation > 1)
            throw new ArgumentOutOfRangeException(nameof(CreditorMaxUtilisation), CreditorMaxUtilisation, "A fraction in [0, 1].");
        if (double.IsNaN(MinRelativeGain) || MinRelativeGain < 0)
            throw new ArgumentOutOfRangeException(nameof(MinRelativeGain), MinRelativeGain, "Must be 0 or more.");
        ArgumentOutOfRangeException.ThrowIfNegative(ExchangeBytesPerRemotePart, nameof(ExchangeBytesPerRemotePart));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MaxRounds, nameof(MaxRounds));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(ExhaustiveSearchLimit, nameof(ExhaustiveSearchLimit));
    }
}
