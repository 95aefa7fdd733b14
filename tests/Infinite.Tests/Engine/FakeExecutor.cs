using Infinite.Engine;
using Infinite.Models;

namespace Infinite.Tests.Engine;

/// <summary>
/// A model executor that checks every plan it gets and keeps a real paged "KV cache" of token ids: tokens are written
/// through the page table and read back through it to compute logits (<see cref="FakeModel"/>), so the engine's output
/// is right only if its page tables are. Plan violations are recorded and thrown.
/// </summary>
internal sealed class FakeExecutor : IModelExecutor
{
    private readonly int[,] _cache;
    private readonly object _sync = new();

    public FakeExecutor(int pageSize = 16, int pageCount = 256, int selectionSlots = 0, int contextLength = 4096)
    {
        PageSize = pageSize;
        PageCount = pageCount;
        SelectionSlots = selectionSlots;
        Config = new LlamaConfig(FakeModel.Vocab, Dim: 8, Layers: 2, QHeads: 4, KvHeads: 2, HeadDim: 4, FfnDim: 16,
            NormEps: 1e-5f, RopeTheta: 10000f, RopeStyle.Half, RopeScaling.None, TiedEmbeddings: false, contextLength);
        _cache = new int[pageCount, pageSize];
    }

    public LlamaConfig Config { get; }
    public int PageSize { get; }
    public int PageCount { get; }
    public int SelectionSlots { get; }
    public bool Disposed { get; private set; }

    /// <summary>Runs first in every step (test hooks: gates, stats probes, injected failures).</summary>
    public Action<StepPlan>? OnStep { get; set; }
    public FakeModel.Script? Script { get; set; }
    /// <summary>When set, the first step waits for it, so requests submitted meanwhile share the batch (the loop
    /// would otherwise finish the first before the test submits the next).</summary>
    public ManualResetEventSlim? FirstStepGate { get; set; }
    public bool ExpectSparse { get; set; }

    public List<StepPlan> Plans { get; } = [];
    public List<string> Violations { get; } = [];

    public void Dispose() => Disposed = true;

    public void Step(StepPlan plan, Span<float> logits)
    {
        bool first;
        lock (_sync)
        {
            Plans.Add(plan);
            first = Plans.Count == 1;
        }
        if (first && FirstStepGate is { } gate && !gate.Wait(TimeSpan.FromSeconds(5)))
            throw new TimeoutException("The test never opened the first-step gate.");
        OnStep?.Invoke(plan);
        string? violation = Check(plan, logits.Length);
        if (violation is not null)
        {
            lock (_sync)
                Violations.Add(violation);
            throw new InvalidOperationException("Bad plan: " + violation);
        }
        for (int s = 0; s < plan.SequenceCount; s++)
        {
            for (int t = plan.QStarts[s]; t < plan.QStarts[s + 1]; t++)
            {
                int pos = plan.Positions[t];
                _cache[plan.PageIds[plan.PageStarts[s] + pos / PageSize], pos % PageSize] = plan.TokenIds[t];
            }
        }
        for (int r = 0; r < plan.LogitTokens.Length; r++)
        {
            int t = plan.LogitTokens[r];
            int s = SequenceOf(plan, t);
            var sequence = new List<int>();
            for (int pos = 0; pos <= plan.Positions[t]; pos++)
                sequence.Add(_cache[plan.PageIds[plan.PageStarts[s] + pos / PageSize], pos % PageSize]);
            FakeModel.Logits(sequence, logits.Slice(r * FakeModel.Vocab, FakeModel.Vocab), Script);
        }
    }

    public List<string> SnapshotViolations()
    {
        lock (_sync)
            return [.. Violations];
    }

    public List<StepPlan> SnapshotPlans()
    {
        lock (_sync)
            return [.. Plans];
    }

    private static int SequenceOf(StepPlan plan, int token)
    {
        for (int s = 0; s < plan.SequenceCount; s++)
        {
            if (token < plan.QStarts[s + 1])
                return s;
        }
        return -1;
    }

    private string? Check(StepPlan plan, int logitsLength)
    {
        int n = plan.SequenceCount;
        if (n == 0 || plan.TokenCount == 0)
            return "empty step";
        if (plan.Positions.Length != plan.TokenCount)
            return "positions and tokens differ in length";
        if (plan.QStarts.Length != n + 1 || plan.PageStarts.Length != n + 1)
            return "QStarts/PageStarts must have sequences + 1 entries";
        if (plan.QStarts[0] != 0 || plan.QStarts[n] != plan.TokenCount || plan.PageStarts[0] != 0
            || plan.PageStarts[n] != plan.PageIds.Length)
            return "QStarts/PageStarts do not span the step";
        var pagesInStep = new HashSet<int>();
        var lastTokens = new HashSet<int>();
        for (int s = 0; s < n; s++)
        {
            int q0 = plan.QStarts[s], q1 = plan.QStarts[s + 1], kv = plan.KvLengths[s];
            if (q1 <= q0)
                return $"sequence {s} has no tokens";
            lastTokens.Add(q1 - 1);
            for (int t = q0; t < q1; t++)
            {
                if (plan.Positions[t] != kv - (q1 - t))
                    return $"sequence {s}: position {plan.Positions[t]} of token {t} is not consecutive ending at KvLength-1 ({kv - 1})";
                if ((uint)plan.TokenIds[t] >= FakeModel.Vocab)
                    return $"token id {plan.TokenIds[t]} out of vocab";
            }
            int pages = plan.PageStarts[s + 1] - plan.PageStarts[s];
            if (pages != (kv + PageSize - 1) / PageSize)
                return $"sequence {s}: {pages} pages for {kv} keys of page size {PageSize}";
            for (int j = plan.PageStarts[s]; j < plan.PageStarts[s + 1]; j++)
            {
                int page = plan.PageIds[j];
                if ((uint)page >= (uint)PageCount)
                    return $"page id {page} out of range";
                if (!pagesInStep.Add(page))
                    return $"page {page} appears twice in one step";
            }
        }
        for (int r = 0; r < plan.LogitTokens.Length; r++)
        {
            if (!lastTokens.Contains(plan.LogitTokens[r]))
                return $"logit token {plan.LogitTokens[r]} is not the last token of a sequence";
            if (r > 0 && plan.LogitTokens[r] <= plan.LogitTokens[r - 1])
                return "logit tokens not increasing";
        }
        if (logitsLength != plan.LogitTokens.Length * FakeModel.Vocab)
            return $"logits span has {logitsLength} floats for {plan.LogitTokens.Length} rows";
        if (ExpectSparse != plan.Sparse is not null)
            return ExpectSparse ? "sparse step missing" : "unexpected sparse step";
        if (plan.Sparse is { } sparse)
        {
            if (sparse.SelectionSlots?.Length != n || sparse.Reselect?.Length != n)
                return "sparse slots/reselect must have one entry per sequence";
            if (sparse.SelectionSlots.Any(slot => (uint)slot >= (uint)SelectionSlots)
                || sparse.SelectionSlots.Distinct().Count() != n)
                return "selection slots out of range or shared";
        }
        return null;
    }
}
