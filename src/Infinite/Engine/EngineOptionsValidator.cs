namespace Infinite.Engine;

/// <summary>Checks engine options against the executor when the engine is built, so misconfiguration fails at
/// start-up with a message rather than at the first request.</summary>
internal static class EngineOptionsValidator
{
    public static void Validate(EngineOptions options, IModelExecutor executor)
    {
        if (options.MaxBatchTokens < 1)
            throw new ArgumentException($"MaxBatchTokens must be >= 1, got {options.MaxBatchTokens}.", nameof(options));
        if (options.MaxRunningRequests < 1)
            throw new ArgumentException($"MaxRunningRequests must be >= 1, got {options.MaxRunningRequests}.", nameof(options));
        if (options.MaxQueuedRequests < 0)
            throw new ArgumentException($"MaxQueuedRequests must be >= 0, got {options.MaxQueuedRequests}.", nameof(options));
        if (options.MaxContext < 0)
            throw new ArgumentException($"MaxContext must be >= 0 (0 = the model's context), got {options.MaxContext}.", nameof(options));
        if (executor.PageSize < 1 || executor.PageCount < 1)
            throw new ArgumentException(
                $"The executor must have pages (page size {executor.PageSize}, page count {executor.PageCount}).", nameof(executor));
        if (executor.Config.VocabSize < 1)
            throw new ArgumentException($"The model's vocabulary size must be >= 1, got {executor.Config.VocabSize}.", nameof(executor));
        ValidateCluster(options, executor);
        if (options.Sparse is not { } sparse)
            return;
        if (executor.SelectionSlots < 1)
            throw new ArgumentException("Sparse attention is on but the executor has no selection slots (SelectionSlots = 0).", nameof(options));
        int heads = executor.Config.Layers * executor.Config.KvHeads;
        if (sparse.StreamingHeads is { } streaming && streaming.Count != heads)
            throw new ArgumentException(
                $"StreamingHeads has {streaming.Count} flags but the model has {heads} (layers {executor.Config.Layers} x KV heads {executor.Config.KvHeads}).",
                nameof(options));
        if (sparse.ReuseInterval < 1)
            throw new ArgumentException($"ReuseInterval must be >= 1, got {sparse.ReuseInterval}.", nameof(options));
        if (sparse.DecodeSinkTokens < 0 || sparse.DecodeLocalTokens < 0 || sparse.PrefillSinkTokens < 0
            || sparse.PrefillLocalTokens < 0 || sparse.BudgetTokens < 0)
            throw new ArgumentException("Sparse sink, local and budget token counts must be >= 0.", nameof(options));
        ValidateStreamingStorage(options, sparse, executor);
    }

    // The executor's pools were split by head role at its creation: the engine's storage and roles must match them.
    private static void ValidateStreamingStorage(EngineOptions options, SparseOptions sparse, IModelExecutor executor)
    {
        if (!Enum.IsDefined(sparse.StreamingStorage))
            throw new ArgumentException($"Sparse.StreamingStorage {sparse.StreamingStorage} is not Paged or Ring.", nameof(options));
        if (sparse.StreamingStorage == StreamingStorage.Paged)
        {
            if (executor.RingPagesPerSequence > 0)
                throw new ArgumentException(
                    "The executor keeps streaming heads in rings (its page pool holds only the retrieval heads): set Sparse.StreamingStorage = Ring.",
                    nameof(options));
            return;
        }
        if (executor.Instances > 1)
            throw new ArgumentException(
                $"Sparse.StreamingStorage = Ring is not supported with several instances (the executor has {executor.Instances}): rings live on one instance; use StreamingStorage.Paged.",
                nameof(options));
        if (executor.RingPagesPerSequence < 1 || executor.RingStreamingHeads is not { } ringHeads)
            throw new ArgumentException(
                "Sparse.StreamingStorage = Ring but the executor keeps no rings: create it with NativeExecutorOptions.RingStreamingHeads and RingPagesPerSequence.",
                nameof(options));
        if (sparse.StreamingHeads is not { } streaming || !streaming.SequenceEqual(ringHeads))
            throw new ArgumentException(
                "Sparse.StreamingHeads must equal the streaming heads the executor split its pools by (NativeExecutorOptions.RingStreamingHeads) with StreamingStorage = Ring.",
                nameof(options));
        int needed = StreamingRing.PagesPerSequence(sparse, executor.PageSize, options.MaxBatchTokens);
        if (executor.RingPagesPerSequence < needed)
            throw new ArgumentException(
                $"The executor's rings have {executor.RingPagesPerSequence} pages but a request needs {needed} (sink {Math.Max(sparse.DecodeSinkTokens, sparse.PrefillSinkTokens)} tokens + a window of max(decode local {sparse.DecodeLocalTokens}, prefill local {sparse.PrefillLocalTokens} + a chunk of MaxBatchTokens {options.MaxBatchTokens} - 1) tokens, pages of {executor.PageSize}).",
                nameof(options));
    }

    private static void ValidateCluster(EngineOptions options, IModelExecutor executor)
    {
        if (executor.Instances < 1)
            throw new ArgumentException($"The executor must have at least one instance, got {executor.Instances}.", nameof(executor));
        if (executor.Instances == 1)
            return;
        if ((long)executor.Instances * executor.PagesPerInstance != executor.PageCount)
            throw new ArgumentException(
                $"The executor's {executor.PageCount} pages are not {executor.Instances} instances x {executor.PagesPerInstance} pages.", nameof(executor));
        if (options.Sparse is { BudgetTokens: > 0, ReuseInterval: > 1 } reused)
            throw new ArgumentException(
                $"Sparse attention with several instances (the executor has {executor.Instances}) selects pages every step: reusable selection with several instances is not supported yet (set Sparse.ReuseInterval = 1, it is {reused.ReuseInterval}).",
                nameof(options));
        if (options.Cluster is not { } cluster)
            throw new ArgumentException("Cluster options must not be null.", nameof(options));
        if (!Enum.IsDefined(cluster.Policy))
            throw new ArgumentException($"Cluster.Policy {cluster.Policy} is not a known policy.", nameof(options));
        if (cluster.MaxMovePagesPerStep < 0)
            throw new ArgumentException($"Cluster.MaxMovePagesPerStep must be >= 0, got {cluster.MaxMovePagesPerStep}.", nameof(options));
        if (cluster.Borrowing is null || cluster.RManager is null || cluster.GManager is null)
            throw new ArgumentException("Cluster.Borrowing, Cluster.RManager and Cluster.GManager must not be null.", nameof(options));
        cluster.Borrowing.Validate();
        cluster.RManager.LendCapPages(executor.PagesPerInstance);
    }
}
