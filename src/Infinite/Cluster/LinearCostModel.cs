namespace Infinite.Cluster;

/// <summary>
/// The simplest calibratable <see cref="ICostModel"/>:
/// <c>T = b * TokenSeconds / f(b) + AttentionSecondsPerKvToken * sum S + ExchangeLatencySeconds * parts
/// + bytes / ExchangeBytesPerSecond</c>, with batch efficiency <c>f(b) = b / (b + HalfEfficiencyBatch)</c>, so the
/// non-attention term is <c>TokenSeconds * (b + HalfEfficiencyBatch)</c>: a fixed weight-streaming cost plus a per-token
/// cost, which is why a bigger batch is cheaper per token while attention cost grows with context, not batch.
/// Defaults are rough datasheet figures for LLaMA2-7B fp16 on one A100 (312 TFLOP/s, 1.5 TB/s), not measurements:
/// calibrate them from benchmarks.
/// </summary>
public sealed class LinearCostModel : ICostModel
{
    /// <summary>Non-attention seconds per token at full efficiency (2 * 7e9 FLOP / 312e12 FLOP/s).</summary>
    public double TokenSeconds { get; init; } = 4.5e-5;

    /// <summary>Batch at which f(b) = 0.5: weight streaming (14 GB / 1.5 TB/s = 9.3 ms) over TokenSeconds.</summary>
    public double HalfEfficiencyBatch { get; init; } = 200;

    /// <summary>Attention seconds per KV token per step (reading 512 KiB of fp16 K and V per token over 32 layers at
    /// 1.5 TB/s).</summary>
    public double AttentionSecondsPerKvToken { get; init; } = 3.5e-7;

    /// <summary>Latency per remote part per step (32 layers times about 10 microseconds per exchange).</summary>
    public double ExchangeLatencySeconds { get; init; } = 3.2e-4;

    /// <summary>Bandwidth of the query/partial exchange.</summary>
    public double ExchangeBytesPerSecond { get; init; } = 100e9;

    /// <summary>f(b): the fraction of peak non-attention throughput reached at batch <paramref name="batchTokens"/>.</summary>
    public double BatchEfficiency(int batchTokens) =>
        batchTokens <= 0 ? 0 : batchTokens / (batchTokens + HalfEfficiencyBatch);

    /// <inheritdoc/>
    public double StepSeconds(InstanceLoad load)
    {
        ArgumentNullException.ThrowIfNull(load);
        ArgumentOutOfRangeException.ThrowIfNegative(load.BatchTokens, nameof(load));
        double seconds = 0;
        if (load.BatchTokens > 0)
            seconds += load.BatchTokens * TokenSeconds / BatchEfficiency(load.BatchTokens);
        long kv = 0;
        foreach (int tokens in load.KvTokens)
            kv += tokens;
        seconds += kv * AttentionSecondsPerKvToken;
        if (load.RemoteParts > 0)
            seconds += load.RemoteParts * ExchangeLatencySeconds + load.ExchangeBytes / ExchangeBytesPerSecond;
        return seconds;
    }
}
