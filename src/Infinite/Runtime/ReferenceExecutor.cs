using Infinite.Engine;
using Infinite.Models;

namespace Infinite.Runtime;

/// <summary>
/// An <see cref="IModelExecutor"/> over the float64 <see cref="ReferenceLlama"/> with its own paged KV store,
/// so engine tests can check exact behaviour without the native library. It honours the plan literally:
/// each token's K and V go to page <c>PageIds[PageStarts[s] + pos / PageSize]</c>, slot <c>pos % PageSize</c>,
/// and attention reads <c>KvLengths[s]</c> keys back through the same table, so a wrong page table shows up as
/// wrong logits (or as an error naming the slot that was never written). Dense only.
/// </summary>
public sealed class ReferenceExecutor : IModelExecutor
{
    private readonly ReferenceLlama _model;
    private readonly int _tokenWidth;
    // [layer][page] -> K or V of one page, [slot][kvHeads * headDim]; allocated on first write.
    private readonly double[]?[][] _keys;
    private readonly double[]?[][] _values;
    // Whether (page, slot) has been written since creation; all layers are written together.
    private readonly bool[] _written;

    public ReferenceExecutor(ReferenceLlama model, int pageSize = 64, int pageCount = 256)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (pageSize <= 0 || (pageSize & (pageSize - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(pageSize), pageSize, "page size must be a positive power of two");
        }
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(pageCount);
        _model = model;
        PageSize = pageSize;
        PageCount = pageCount;
        LlamaConfig c = model.Config;
        _tokenWidth = c.KvHeads * c.HeadDim;
        _keys = new double[]?[c.Layers][];
        _values = new double[]?[c.Layers][];
        for (int l = 0; l < c.Layers; l++)
        {
            _keys[l] = new double[]?[pageCount];
            _values[l] = new double[]?[pageCount];
        }
        _written = new bool[checked(pageCount * pageSize)];
    }

    /// <summary>Reads <paramref name="weights"/> into a new <see cref="ReferenceLlama"/>.</summary>
    public ReferenceExecutor(IWeightSource weights, int pageSize = 64, int pageCount = 256)
        : this(new ReferenceLlama(weights), pageSize, pageCount)
    {
    }

    public LlamaConfig Config => _model.Config;

    public int PageSize { get; }

    public int PageCount { get; }

    /// <summary>0: the reference is dense.</summary>
    public int SelectionSlots => 0;

    public ReferenceLlama Model => _model;

    public void Step(StepPlan plan, Span<float> logits)
    {
        StepPlanShape.Check(plan, logits.Length, Config.VocabSize);
        if (plan.Sparse is not null)
        {
            throw new NotSupportedException("the reference executor is dense");
        }
        int[] sequenceOf = CheckValues(plan);
        LlamaConfig c = Config;
        int tokens = plan.TokenCount;
        var x = new double[tokens][];
        var q = new double[tokens][];
        for (int t = 0; t < tokens; t++)
        {
            x[t] = new double[c.Dim];
            _model.Embed(plan.TokenIds[t], x[t]);
            q[t] = new double[c.QHeads * c.HeadDim];
        }
        var k = new double[_tokenWidth];
        var v = new double[_tokenWidth];
        var attention = new double[c.QHeads * c.HeadDim];
        for (int l = 0; l < c.Layers; l++)
        {
            // Every token of the step is stored before any attends: a prefill chunk sees its own keys.
            for (int t = 0; t < tokens; t++)
            {
                _model.ProjectQkv(l, x[t], plan.Positions[t], q[t], k, v);
                (int page, int slot) = Locate(plan, sequenceOf[t], plan.Positions[t]);
                Store(_keys[l], page, slot, k);
                Store(_values[l], page, slot, v);
            }
            for (int t = 0; t < tokens; t++)
            {
                int s = sequenceOf[t];
                int visible = Math.Min(plan.Positions[t] + 1, plan.KvLengths[s]);
                double[]?[] keys = _keys[l], values = _values[l];
                _model.Attend(q[t], visible, pos => Load(keys, plan, s, pos), pos => Load(values, plan, s, pos), attention);
                _model.FinishLayer(l, x[t], attention);
            }
        }
        var row = new double[c.VocabSize];
        for (int r = 0; r < plan.LogitTokens.Length; r++)
        {
            _model.Logits(x[plan.LogitTokens[r]], row);
            Span<float> target = logits.Slice(r * c.VocabSize, c.VocabSize);
            for (int i = 0; i < row.Length; i++)
            {
                target[i] = (float)row[i];
            }
        }
    }

    public void Dispose()
    {
        // Managed memory only; nothing to release.
    }

    private (int Page, int Slot) Locate(StepPlan plan, int sequence, int position) =>
        (plan.PageIds[plan.PageStarts[sequence] + position / PageSize], position % PageSize);

    private void Store(double[]?[] layer, int page, int slot, double[] row)
    {
        double[] data = layer[page] ??= new double[PageSize * _tokenWidth];
        row.CopyTo(data, slot * _tokenWidth);
        _written[page * PageSize + slot] = true;
    }

    private double[] Load(double[]?[] layer, StepPlan plan, int sequence, int position)
    {
        (int page, int slot) = Locate(plan, sequence, position);
        if (!_written[page * PageSize + slot])
        {
            throw new InvalidOperationException($"sequence {sequence} reads position {position} from page {page} slot {slot}, which was never written");
        }
        return layer[page]!.AsSpan(slot * _tokenWidth, _tokenWidth).ToArray();
    }

    /// <summary>Value checks of the plan; returns each token's sequence.</summary>
    private int[] CheckValues(StepPlan plan)
    {
        int vocab = Config.VocabSize;
        var sequenceOf = new int[plan.TokenCount];
        var targets = new HashSet<(int Page, int Slot)>();
        for (int s = 0; s < plan.SequenceCount; s++)
        {
            int first = plan.QStarts[s], end = plan.QStarts[s + 1];
            int kvLength = plan.KvLengths[s];
            if (end == first)
            {
                throw new ArgumentException($"sequence {s} has no tokens", nameof(plan));
            }
            int entries = plan.PageStarts[s + 1] - plan.PageStarts[s];
            if ((long)entries * PageSize < kvLength)
            {
                throw new ArgumentException($"sequence {s} has {entries} pages of {PageSize} tokens, too few for KvLengths[{s}] = {kvLength}", nameof(plan));
            }
            for (int j = plan.PageStarts[s]; j < plan.PageStarts[s + 1]; j++)
            {
                if ((uint)plan.PageIds[j] >= (uint)PageCount)
                {
                    throw new ArgumentException($"PageIds[{j}] = {plan.PageIds[j]} is outside [0, {PageCount})", nameof(plan));
                }
            }
            for (int t = first; t < end; t++)
            {
                int expected = kvLength - (end - t);
                if (plan.Positions[t] != expected || expected < 0)
                {
                    throw new ArgumentException($"Positions[{t}] = {plan.Positions[t]}, but sequence {s}'s tokens must sit at consecutive positions ending at KvLengths[{s}] - 1 = {kvLength - 1} (expected {expected})", nameof(plan));
                }
                if ((uint)plan.TokenIds[t] >= (uint)vocab)
                {
                    throw new ArgumentException($"TokenIds[{t}] = {plan.TokenIds[t]} is outside [0, {vocab})", nameof(plan));
                }
                sequenceOf[t] = s;
                (int page, int slot) = Locate(plan, s, expected);
                if (!targets.Add((page, slot)))
                {
                    throw new ArgumentException($"page {page} slot {slot} is written twice in one step (token {t} of sequence {s})", nameof(plan));
                }
            }
        }
        for (int r = 0; r < plan.LogitTokens.Length; r++)
        {
            if ((uint)plan.LogitTokens[r] >= (uint)plan.TokenCount)
            {
                throw new ArgumentException($"LogitTokens[{r}] = {plan.LogitTokens[r]} is outside [0, {plan.TokenCount})", nameof(plan));
            }
        }
        return sequenceOf;
    }
}
