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
    /// <summary>The instance whose queue it waits in under per-instance dispatch (chosen on arrival, never changed);
    /// -1 with one global queue.</summary>
    public int Assigned { get; set; } = -1;
    public List<int> Table { get; } = [];
    /// <summary>Pages of <see cref="Table"/> on each instance.</summary>
    public int[] PagesOn { get; }

    /// <summary>Pages of the first <see cref="PrefixPages"/> entries of <see cref="Table"/> on each instance: where the
    /// keys a prefill chunk sees lie (causal attention never reads the pages of later positions). Advanced as prefill
    /// goes on; reset when the table is released or rewritten by a move.</summary>
    public int[] PrefixOn { get; private set; } = [];
    public int PrefixPages { get; private set; }

    /// <summary>Counts the table's first <paramref name="pages"/> entries per instance, continuing from the last call.</summary>
    public int[] AdvancePrefix(int pages, Func<int, int> instanceOf)
    {
        if (PrefixOn.Length != PagesOn.Length)
            PrefixOn = new int[PagesOn.Length];
        if (pages < PrefixPages)
            ResetPrefix();
        for (int k = PrefixPages; k < pages; k++)
            PrefixOn[instanceOf(Table[k])]++;
        PrefixPages = Math.Max(PrefixPages, pages);
        return PrefixOn;
    }

    public void ResetPrefix()
    {
        Array.Clear(PrefixOn);
        PrefixPages = 0;
    }
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
