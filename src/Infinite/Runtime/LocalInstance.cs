using Infinite.Engine;
using Infinite.Native;

namespace Infinite.Runtime;

/// <summary>
/// An instance in this process: a native model (shareable: the model is thread-safe across pools, so in-process
/// instances load the weights once), its own KV page pool and its communicator endpoint. <see cref="Step(InstancePlan, Span{float})"/> turns an
/// <see cref="InstancePlan"/> into <c>inf_step_plan</c> + <c>inf_step_exchange</c> and makes the one native call of
/// the step. Under MPI, rank 0's own instance is a LocalInstance over an MPI endpoint, and each worker rank runs one.
/// </summary>
public sealed class LocalInstance : IInstanceRunner
{
    /// <summary>The tag of page-migration messages (one message per page move between a pair of instances).</summary>
    public const int MoveTag = 1;

    private readonly bool _ownsPool;
    private volatile bool _failed;

    /// <param name="model">The model; not owned (it may serve other instances).</param>
    /// <param name="pool">This instance's KV pages; disposed with the instance when <paramref name="ownsPool"/>.</param>
    /// <param name="communicator">This instance's endpoint; owned: disposing the instance tells the peers it is gone.</param>
    public LocalInstance(NativeModel model, PagePool pool, Communicator communicator, bool ownsPool = true)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentNullException.ThrowIfNull(communicator);
        Model = model;
        Pool = pool;
        Communicator = communicator;
        Rank = communicator.Rank;
        _ownsPool = ownsPool;
    }

    public int Rank { get; }

    public NativeModel Model { get; }

    public PagePool Pool { get; }

    public Communicator Communicator { get; }

    /// <summary>True after <see cref="Fail"/>: the endpoint is gone, as after the death of its process.</summary>
    public bool IsFailed => _failed;

    public void Step(InstancePlan plan, Span<float> logits) => Step(plan, plan?.Sparse, logits);

    /// <summary>This instance's share of a step with sparse attention (<paramref name="sparse"/> non-null): the step's
    /// Λ windows, streaming heads and budget, applied to its own sequences and to the parts it serves. Selections are
    /// made every step (a global top-k at each home); the per-sequence <see cref="SparseStep.SelectionSlots"/> and
    /// <see cref="SparseStep.Reselect"/> are not used: a reusable selection is not supported with several instances.</summary>
    public void Step(InstancePlan plan, SparseStep? sparse, Span<float> logits)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ThrowIfFailed();
        var native = new NativeStepPlan
        {
            TokenIds = plan.TokenIds,
            Positions = plan.Positions,
            QStarts = plan.QStarts,
            KvLengths = plan.KvLengths,
            PageStarts = plan.PageStarts,
            PageIds = plan.PageIds,
            PagePositions = plan.PagePositions,
            LogitTokens = plan.LogitTokens,
        };
        var exchange = new NativeStepExchange
        {
            Communicator = Communicator,
            StepId = plan.StepId,
            RemoteSequences = plan.RemoteSequences,
            RemoteRanks = plan.RemoteRanks,
            RemoteSendsKv = plan.RemoteSendsKv,
            ServedRanks = plan.ServedRanks,
            ServedQStarts = plan.ServedQStarts,
            ServedPositions = plan.ServedPositions,
            ServedKvLengths = plan.ServedKvLengths,
            ServedPageStarts = plan.ServedPageStarts,
            ServedPageIds = plan.ServedPageIds,
            ServedPagePositions = plan.ServedPagePositions,
            ServedReceivesKv = plan.ServedReceivesKv,
            ServedAppendPages = plan.ServedAppendPages,
        };
        if (sparse is null)
        {
            Model.Step(Pool, native, exchange, logits);
            return;
        }
        int[]? streaming = sparse.StreamingHeads is { } flags ? Array.ConvertAll(flags, f => f ? 1 : 0) : null;
        var step = new NativeSparseStep
        {
            StreamingHeads = streaming,
            DecodeSinkTokens = sparse.DecodeSinkTokens,
            DecodeLocalTokens = sparse.DecodeLocalTokens,
            PrefillSinkTokens = sparse.PrefillSinkTokens,
            PrefillLocalTokens = sparse.PrefillLocalTokens,
            BudgetTokens = sparse.BudgetTokens,
            PerQueryHead = sparse.PerQueryHead,
        };
        Model.Step(Pool, native, step, exchange, logits);
    }

    public void SendPages(int peer, ReadOnlySpan<int> pages)
    {
        ThrowIfFailed();
        Pool.SendPages(Communicator, peer, MoveTag, pages);
    }

    public void ReceivePages(int peer, ReadOnlySpan<int> pages)
    {
        ThrowIfFailed();
        Pool.ReceivePages(Communicator, peer, MoveTag, pages);
    }

    /// <summary>Destroys this instance's endpoint, as the death of its process would: peers' receives from it and
    /// sends to it fail at once with <see cref="PeerFailedException"/>. A step already running on it finishes first
    /// (it holds the endpoint for the call). For failure tests and for taking an instance out of service.</summary>
    public void Fail()
    {
        _failed = true;
        Communicator.Dispose();
    }

    public void Dispose()
    {
        _failed = true;
        Communicator.Dispose();
        if (_ownsPool)
        {
            Pool.Dispose();
        }
    }

    private void ThrowIfFailed()
    {
        if (_failed)
        {
            throw new InstanceFailedException(Rank, "its communicator endpoint is gone");
        }
    }
}
