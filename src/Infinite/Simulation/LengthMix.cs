namespace Infinite.Simulation;

/// <summary>
/// How request lengths are drawn: total context log-uniform between <see cref="MinContext"/> and
/// <see cref="MaxContext"/> (lengths in the paper's traces span orders of magnitude, so a log-uniform draw gives
/// each decade the same weight), output tokens uniform in [<see cref="MinOutput"/>, <see cref="MaxOutput"/>], the
/// prompt the rest. <see cref="IncludeMaximum"/> makes the middle request exactly <see cref="MaxContext"/> long, so a
/// run always tests the longest context the trace claims. With a <see cref="TailFraction"/>, that share of the
/// requests instead draws its context uniformly in [<see cref="TailMin"/>, <see cref="TailMax"/>] (a heavy tail of
/// long requests among many short ones, as production traces look).
/// </summary>
public sealed record LengthMix
{
    public required string Name { get; init; }
    public required int MinContext { get; init; }
    public required int MaxContext { get; init; }
    public int MinOutput { get; init; } = 32;
    public int MaxOutput { get; init; } = 512;
    public bool IncludeMaximum { get; init; }
    /// <summary>Share of requests drawn from the tail range (0: none).</summary>
    public double TailFraction { get; init; }
    public int TailMin { get; init; }
    public int TailMax { get; init; }

    /// <summary>The paper's short traces (0-2): contexts of 1K-60K tokens.</summary>
    public static LengthMix Short { get; } = new() { Name = "short", MinContext = 1_000, MaxContext = 60_000 };

    /// <summary>The paper's long traces (3-8): contexts of 1K-2000K tokens, one request at 2000K.</summary>
    public static LengthMix Long { get; } = new() { Name = "long", MinContext = 1_000, MaxContext = 2_000_000, IncludeMaximum = true };

    /// <summary>
    /// Not one of the paper's mixes: 95% of requests at 1K-4K tokens and 5% at 80K-110K, just under one A100-80GB's
    /// pool for Llama-2-7B (111.6K tokens). The regime where static placement fragments worst (an instance holding
    /// one long request cannot take another), used to show how the borrowing gain depends on the length mix.
    /// </summary>
    public static LengthMix Mixed { get; } = new() { Name = "mixed", MinContext = 1_000, MaxContext = 4_000, TailFraction = 0.05, TailMin = 80_000, TailMax = 110_000 };

    /// <summary>"short", "long" or "mixed".</summary>
    /// <exception cref="ArgumentException">Any other name.</exception>
    public static LengthMix Parse(string name) => name?.Trim().ToLowerInvariant() switch
    {
        "short" => Short,
        "long" => Long,
        "mixed" => Mixed,
        _ => throw new ArgumentException($"Unknown workload '{name}': expected short, long or mixed.", nameof(name)),
    };

    /// <summary>Throws when the bounds cannot produce a request.</summary>
    public void Validate()
    {
        if (MinOutput < 1 || MaxOutput < MinOutput)
            throw new ArgumentException($"Output tokens need 1 <= min <= max, got {MinOutput}..{MaxOutput}.");
        if (MinContext <= MaxOutput || MaxContext < MinContext)
            throw new ArgumentException($"Context lengths need max output ({MaxOutput}) < min <= max, got {MinContext}..{MaxContext}.");
        if (double.IsNaN(TailFraction) || TailFraction < 0 || TailFraction > 1)
            throw new ArgumentException($"The tail fraction is a share in [0, 1], got {TailFraction}.");
        if (TailFraction > 0 && (TailMin <= MaxOutput || TailMax < TailMin))
            throw new ArgumentException($"Tail lengths need max output ({MaxOutput}) < min <= max, got {TailMin}..{TailMax}.");
    }
}
