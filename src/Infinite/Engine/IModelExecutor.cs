using Infinite.Models;

namespace Infinite.Engine;

/// <summary>
/// Runs forward steps of one model over one paged KV cache. The engine owns the decisions (which tokens, which
/// pages); the executor owns the bytes. Implemented natively (<c>Infinite.Runtime.NativeExecutor</c>) and by the float64
/// reference (<c>Infinite.Runtime.ReferenceExecutor</c>).
/// </summary>
public interface IModelExecutor : IDisposable
{
    LlamaConfig Config { get; }

    /// <summary>Tokens per KV page.</summary>
    int PageSize { get; }

    /// <summary>Pages in the KV cache; page ids are 0 .. PageCount-1.</summary>
    int PageCount { get; }

    /// <summary>Selection slots available to <see cref="SparseStep.SelectionSlots"/> (0 when sparse is unsupported).</summary>
    int SelectionSlots { get; }

    /// <summary>Instances the KV cache is spread over (1 for one device). Their pools have PagesPerInstance pages each
    /// and global page ids <c>instance * PagesPerInstance + local</c>; <see cref="PageCount"/> is their sum.</summary>
    int Instances => 1;

    int PagesPerInstance => PageCount;

    /// <summary>Pages of each running request's ring of streaming heads (<see cref="StreamingStorage.Ring"/>), 0 when
    /// the executor keeps none. Request slot k (<see cref="SparseStep.SelectionSlots"/>) owns ring k, so a ring is
    /// held exactly while its request holds its slot.</summary>
    int RingPagesPerSequence => 0;
    /// <summary>The [layers * kvHeads] streaming flags the executor's pools were split by (with a ring), else null.</summary>
    IReadOnlyList<bool>? RingStreamingHeads => null;
    /// <summary>Runs one step; <paramref name="logits"/> receives [plan.LogitTokens.Length][VocabSize].</summary>
    void Step(StepPlan plan, Span<float> logits);
}
