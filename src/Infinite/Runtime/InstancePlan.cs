namespace Infinite.Runtime;

/// <summary>
/// One instance's share of a distributed step: the arrays of <c>inf_step_plan</c> (local page tables with page
/// positions) and of <c>inf_step_exchange</c> (remote parts this instance's sequences have on peers, parts of peers'
/// sequences it serves). Built by <c>DistributedExecutor</c> from an engine <see cref="Engine.StepPlan"/>; run
/// in this process (<see cref="IInstanceRunner"/> over a native model) or shipped to another process under MPI.
/// Page ids here are the instance's local ids. See the header's inf_step_exchange for the ordering rules.
/// </summary>
public sealed class InstancePlan
{
    public long StepId { get; init; }
    /// <summary>The step's sparse attention (streaming heads, Λ windows, budget, per-query-head selection), applied to
    /// this instance's sequences and to the parts it serves; null: dense. Selection slots and reselect flags are not
    /// used: with several instances pages are selected every step (a global top-k at each home).</summary>
    public Engine.SparseStep? Sparse { get; init; }
    public int[] TokenIds { get; init; } = [];
    public int[] Positions { get; init; } = [];
    /// <summary>[sequences + 1].</summary>
    public int[] QStarts { get; init; } = [0];
    public int[] KvLengths { get; init; } = [];
    /// <summary>[sequences + 1].</summary>
    public int[] PageStarts { get; init; } = [0];
    public int[] PageIds { get; init; } = [];
    /// <summary>First key position of each local entry.</summary>
    public int[] PagePositions { get; init; } = [];
    public int[] LogitTokens { get; init; } = [];

    public int[] RemoteSequences { get; init; } = [];
    public int[] RemoteRanks { get; init; } = [];
    public int[] RemoteSendsKv { get; init; } = [];

    public int[] ServedRanks { get; init; } = [];
    /// <summary>[served parts + 1].</summary>
    public int[] ServedQStarts { get; init; } = [0];
    public int[] ServedPositions { get; init; } = [];
    public int[] ServedKvLengths { get; init; } = [];
    /// <summary>[served parts + 1].</summary>
    public int[] ServedPageStarts { get; init; } = [0];
    public int[] ServedPageIds { get; init; } = [];
    public int[] ServedPagePositions { get; init; } = [];
    public int[] ServedReceivesKv { get; init; } = [];
    /// <summary>[served rows] or null when no part receives K and V.</summary>
    public int[]? ServedAppendPages { get; init; }

    public int SequenceCount => KvLengths.Length;
    public int ServedCount => ServedKvLengths.Length;
    /// <summary>True when the instance has nothing to do this step (no sequences, nothing to serve).</summary>
    public bool IsIdle => SequenceCount == 0 && ServedCount == 0;
}

/// <summary>
/// One instance of a distributed executor: a model and a KV page pool with its communicator endpoint, either in
/// this process (<c>LocalInstance</c>) or in another MPI rank (<c>RemoteInstance</c>, which ships the plan to that
/// rank's worker loop). Every instance of a step is stepped concurrently; page moves pair a send with a receive.
/// </summary>
public interface IInstanceRunner : IDisposable
{
    int Rank { get; }

    /// <summary>True once the instance is known to be gone (its endpoint destroyed, its process dead): the executor
    /// then fails a step that needs it at once, instead of waiting for its peers' receives to time out.</summary>
    bool IsFailed => false;

    /// <summary>Runs this instance's share of a step; <paramref name="logits"/> gets [plan.LogitTokens.Length][vocab].</summary>
    void Step(InstancePlan plan, Span<float> logits);

    /// <summary>Sends local <paramref name="pages"/> (all layers) to <paramref name="peer"/>.</summary>
    void SendPages(int peer, ReadOnlySpan<int> pages);

    /// <summary>Receives pages from <paramref name="peer"/> into local <paramref name="pages"/>.</summary>
    void ReceivePages(int peer, ReadOnlySpan<int> pages);
}
