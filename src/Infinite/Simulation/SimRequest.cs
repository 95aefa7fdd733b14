namespace Infinite.Simulation;

/// <summary>Where a simulated request is.</summary>
internal enum SimRequestState
{
    Pending,
    Queued,
    Running,
    Finished,
    Rejected,
}

/// <summary>
/// The simulator's state of one request: its lengths, progress (tokens whose KV is computed, tokens generated),
/// its home and page table in the page space, and per-instance page counts kept up to date incrementally so that
/// pricing a step never walks a 2000K-token page table.
/// </summary>
internal sealed class SimRequest
{
    public SimRequest(int index, WorkloadRequest workload, int instances)
    {
        Index = index;
        Workload = workload;
        PagesOn = new int[instances];
    }

    public int Index { get; }
    public long Id => Index + 1;
    public WorkloadRequest Workload { get; }
    public SimRequestState State { get; set; } = SimRequestState.Pending;
    public int Home { get; set; } = -1;
    public List<int> Table { get; } = [];
    /// <summary>Pages of <see cref="Table"/> on each instance.</summary>
    public int[] PagesOn { get; }
    /// <summary>Leading tokens whose KV is computed.</summary>
    public long Computed { get; set; }
    /// <summary>Tokens generated so far (kept across preemptions: they are recomputed, not regenerated).</summary>
    public int Generated { get; set; }
    /// <summary>True once the prefill since the last (re)admission has finished; later steps decode.</summary>
    public bool Prefilled { get; set; }
    public double FirstTokenSeconds { get; set; } = double.NaN;
    public double FinishSeconds { get; set; } = double.NaN;
    public string? RejectReason { get; set; }
    public int Preemptions { get; set; }
    /// <summary>When it was last admitted (a counter): the cluster-wide admission order the engine's scheduler
    /// feeds prefill chunks in.</summary>
    public long AdmissionOrder { get; set; }

    /// <summary>Prompt plus generated tokens: what a (re)prefill must compute.</summary>
    public long Tokens => Workload.PromptTokens + (long)Generated;
    public long Pending => Tokens - Computed;
}
