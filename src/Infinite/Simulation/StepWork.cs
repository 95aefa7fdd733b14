namespace Infinite.Simulation;

/// <summary>
/// What one instance does in one step, in FLOPs and bytes: the rows its non-attention layers process, the attention
/// over its local pages (its own requests' and the parts it serves for debtors), the attention its requests have run
/// on creditors, and the KV pages it migrates. The simulator fills it from a batch; the cost model prices it.
/// Reused between steps (<see cref="Clear"/>) so a long simulation does not allocate per step.
/// </summary>
public sealed class StepWork
{
    public StepWork(int instances)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(instances);
        RemoteFlops = new double[instances];
        RemoteBytes = new double[instances];
        RemoteQueryTokens = new double[instances];
    }

    /// <summary>Rows fed through the non-attention layers (decodes + prefill chunk tokens).</summary>
    public long Tokens { get; set; }
    /// <summary>Rows that go through the output head (one per decode and per finished prefill).</summary>
    public int LogitRows { get; set; }
    /// <summary>Sequences in the batch.</summary>
    public int Sequences { get; set; }
    /// <summary>Attention FLOPs over KV on this instance (own requests and served parts).</summary>
    public double LocalAttentionFlops { get; set; }
    /// <summary>KV bytes read by attention on this instance.</summary>
    public double LocalAttentionBytes { get; set; }
    /// <summary>Part of <see cref="LocalAttentionBytes"/> read for other instances' requests (creditor work).</summary>
    public double ServedAttentionBytes { get; set; }
    /// <summary>Per creditor instance: attention FLOPs run there for this instance's requests.</summary>
    public double[] RemoteFlops { get; }
    /// <summary>Per creditor instance: KV bytes read there for this instance's requests.</summary>
    public double[] RemoteBytes { get; }
    /// <summary>Per creditor instance: query rows shipped there (each costs q out and (o, lse) back per layer).</summary>
    public double[] RemoteQueryTokens { get; }
    /// <summary>KV bytes this instance sends or receives for page migration this step.</summary>
    public double MigrationBytes { get; set; }
    /// <summary>The link migration uses (the slowest peer's).</summary>
    public Link MigrationLink { get; set; }

    public void Clear()
    {
        Tokens = 0;
        LogitRows = 0;
        Sequences = 0;
        LocalAttentionFlops = 0;
        LocalAttentionBytes = 0;
        ServedAttentionBytes = 0;
        Array.Clear(RemoteFlops);
        Array.Clear(RemoteBytes);
        Array.Clear(RemoteQueryTokens);
        MigrationBytes = 0;
        MigrationLink = default;
    }
}
