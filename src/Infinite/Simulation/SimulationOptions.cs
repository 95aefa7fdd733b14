namespace Infinite.Simulation;

/// <summary>The engine's batching limits as the simulator applies them, and how the run reports progress.</summary>
public sealed record SimulationOptions
{
    /// <summary>Tokens one instance feeds per step (decodes first, then prefill chunks), as
    /// <c>EngineOptions.MaxBatchTokens</c>. Default 2048 (the engine's default).</summary>
    public int MaxBatchTokens { get; init; } = 2048;

    /// <summary>Requests running at once on one instance (<c>EngineOptions.MaxRunningRequests</c>, 256).</summary>
    public int MaxRunningPerInstance { get; init; } = 256;

    /// <summary>Steps per instance between gManager move plans for policies that migrate pages (the paper re-plans
    /// periodically because lengths are not known ahead; planning every step would cost the simulation more than it
    /// tells). Default 32; the plan's move budget is <see cref="MigrationTokensPerStep"/> times this.</summary>
    public int PlanEverySteps { get; init; } = 32;

    /// <summary>KV tokens a request migrates per decode step at most (the paper: 16 tokens per step hide fully behind
    /// inference). Default 16.</summary>
    public int MigrationTokensPerStep { get; init; } = 16;

    /// <summary>
    /// Instances on one shared host, as the engine runs them in one process (<c>InfiniteOptions.Instances</c> on the
    /// CPU, <c>infinite serve --instances N</c>): the engine's scheduler batches the whole cluster into one step with
    /// one token budget (<see cref="MaxBatchTokens"/> for all instances together: decodes first, then prefill chunks
    /// in cluster-wide admission order) and the distributed executor runs every instance's share of it at once; and
    /// the instances share the host's cores and memory bandwidth: the native thread pool is process-wide and runs one
    /// parallel region at a time, so the instances' kernels take turns on all the cores instead of running side by
    /// side. A cluster step therefore lasts the <em>sum</em> of the instances' priced parts, each priced at the whole
    /// machine's rates (the device profile's figures are the host's), not the longest of them as on separate GPUs.
    /// Default false: the paper's setup, every instance on its own GPUs with its own clock and budget.
    /// </summary>
    public bool SharedHost { get; init; }

    /// <summary>How arriving requests reach an instance. Default <see cref="DispatchMode.Arrival"/>: per-instance queues
    /// behind a least-loaded balancer, as the paper's vLLM-M and Infinite-LLM receive requests.
    /// <see cref="DispatchMode.Global"/> is the engine's one queue (required with <see cref="SharedHost"/>).</summary>
    public DispatchMode Dispatch { get; init; } = DispatchMode.Arrival;

    /// <summary>Borrowing policies balance a borrowing request's pages over its home and the fewest creditors that
    /// hold them (<c>ClusterPageSpace.SpreadBorrowing</c>) instead of filling the home first. Default true.</summary>
    public bool SpreadBorrowing { get; init; } = true;

    /// <summary>An instance with no demand of its own lends all its free pages, not only the lending cap
    /// (<c>RManagerOptions.LendAllWhenIdle</c>). Default true.</summary>
    public bool LendAllWhenIdle { get; init; } = true;

    /// <summary>A growing request borrows only from instances below the creditor utilisation threshold
    /// (<c>BorrowingOptions.BorrowOnlyFromCreditors</c>), as the greedy plan's creditors. Default true.</summary>
    public bool BorrowOnlyFromCreditors { get; init; } = true;

    /// <summary>Called for each shared-host cluster step with (prefill tokens, decode tokens, seconds): the per-step
    /// figures the CPU validation compares with the real engine's <c>StepCompleted</c> events.</summary>
    public Action<int, int, double>? StepObserver { get; init; }

    /// <summary>Called every <see cref="ProgressEvery"/> finished or rejected requests (and at the end) with
    /// (done, total, simulated seconds).</summary>
    public Action<int, int, double>? Progress { get; init; }

    public int ProgressEvery { get; init; } = 50;

    /// <summary>Most utilisation samples kept (older ones are thinned to every other as the run grows).</summary>
    public int MaxSamples { get; init; } = 20_000;

    /// <summary>Stops a run between events (checked every few thousand events).</summary>
    public CancellationToken Cancellation { get; init; }

    /// <summary>A guard against runaway runs: simulation stops with an exception after this many events.</summary>
    public long MaxEvents { get; init; } = 200_000_000;

    public void Validate()
    {
        if (MaxBatchTokens < 1)
            throw new ArgumentException($"The step token budget must be at least 1, got {MaxBatchTokens}.");
        if (MaxRunningPerInstance < 1)
            throw new ArgumentException($"At least one request must run per instance, got {MaxRunningPerInstance}.");
        if (PlanEverySteps < 1)
            throw new ArgumentException($"Plans need at least one step between them, got {PlanEverySteps}.");
        if (MigrationTokensPerStep < 0)
            throw new ArgumentException($"Migration tokens per step must be >= 0, got {MigrationTokensPerStep}.");
        if (ProgressEvery < 1)
            throw new ArgumentException($"Progress is reported every 1 or more requests, got {ProgressEvery}.");
        if (!Enum.IsDefined(Dispatch))
            throw new ArgumentException($"Unknown dispatch mode {(int)Dispatch}.");
        if (SharedHost && Dispatch != DispatchMode.Global)
            throw new ArgumentException("A shared host models the engine, which has one global queue: use global dispatch with it.");
        if (MaxSamples < 16)
            throw new ArgumentException($"Keep at least 16 utilisation samples, got {MaxSamples}.");
    }
}
