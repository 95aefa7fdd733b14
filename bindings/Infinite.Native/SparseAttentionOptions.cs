namespace Infinite.Native;

/// <summary>Whether page selection keeps one page list per KV head or per query head.</summary>
public enum SelectionGranularity
{
    /// <summary>One list per KV head, scored by the max over its query heads: K/V read once per GQA group.</summary>
    PerKvHead,

    /// <summary>One list per query head (LServe's code): finer, but the group's heads read different pages.</summary>
    PerQueryHead,
}

/// <summary>
/// Settings of LServe-style sparse attention. Defaults follow the paper's released configuration:
/// decode window sink 128 + local 256, prefill window sink 128 + local 4096, token budget 4096 for
/// retrieval heads, selection recomputed every 4 decode steps.
/// </summary>
public sealed record SparseAttentionOptions
{
    public int SinkTokens { get; init; } = 128;

    /// <summary>Recent tokens a streaming head sees while decoding.</summary>
    public int LocalTokens { get; init; } = 256;

    /// <summary>Recent tokens a streaming head sees during prefill.</summary>
    public int PrefillLocalTokens { get; init; } = 4096;

    /// <summary>Tokens a retrieval head reads at long context; beyond it, pages are selected.</summary>
    public int TokenBudget { get; init; } = 4096;

    /// <summary>Decode steps a selection is reused for (1: recomputed every step).</summary>
    public int ReuseInterval { get; init; } = 4;

    public SelectionGranularity Granularity { get; init; } = SelectionGranularity.PerKvHead;

    /// <summary>Throws <see cref="ArgumentException"/> naming the setting when it does not fit a pool of
    /// <paramref name="pageSize"/>-token pages: windows must be whole pages, the budget at least one page.</summary>
    public void Validate(int pageSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(pageSize);
        RequirePages(SinkTokens, nameof(SinkTokens), pageSize, allowZero: true);
        RequirePages(LocalTokens, nameof(LocalTokens), pageSize, allowZero: false);
        RequirePages(PrefillLocalTokens, nameof(PrefillLocalTokens), pageSize, allowZero: false);
        if (TokenBudget < pageSize)
        {
            throw new ArgumentException($"{nameof(TokenBudget)} ({TokenBudget}) is smaller than one page ({pageSize} tokens)", nameof(TokenBudget));
        }
        if (ReuseInterval < 1)
        {
            throw new ArgumentException($"{nameof(ReuseInterval)} ({ReuseInterval}) must be at least 1", nameof(ReuseInterval));
        }
    }

    private static void RequirePages(int tokens, string name, int pageSize, bool allowZero)
    {
        if (tokens < 0 || (!allowZero && tokens == 0) || tokens % pageSize != 0)
        {
            throw new ArgumentException($"{name} ({tokens}) must be a {(allowZero ? "" : "positive ")}multiple of the page size ({pageSize})", name);
        }
    }
}
