using Infinite.Engine;
using Infinite.Runtime;

namespace Infinite.Tests.Runtime;

/// <summary>
/// Sparse steps through <see cref="NativeExecutor"/> against the float64 model with the same choices written
/// out as an attention mask: streaming heads see the Λ band (sink + local keys); retrieval heads of a decode
/// past the budget see only their selected pages. A budget of one page makes the selection predictable: the
/// page of the newest key, and a reused selection keeps its old page with the newest one forced in.
/// </summary>
public sealed class NativeSparseStepTests
{
    private const int PageSize = 16;
    private const int Sink = 4;
    private const int Local = 8;
    private const int Prompt = 47;
    // [layers][kv_heads]: layer 0 streams KV head 1, layer 1 streams KV head 1 (not symmetric, so a
    // transposed layout would show).
    private static readonly bool[] Streaming = [false, true, false, true];

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Streaming_heads_and_page_selection_match_the_masked_reference(bool reselectSecondDecode)
    {
        using var weights = TestWeights.Random(TestWeights.TinyConfig(), seed: 101);
        using var native = new NativeExecutor(weights, new NativeExecutorOptions
        {
            PageSize = PageSize, PageCount = 8, SelectionSlots = 3, MaxBudgetTokens = PageSize, LogicalPageSize = 16,
        });
        int[] tokens = StepPlans.RandomTokens(Prompt + 2, 64, seed: 102);
        var sequence = new TestSequence(new ShuffledPages(PageSize, 8, seed: 103));
        StepPlans.Run(native, StepPlans.Build(new StepPart(sequence, tokens[..Prompt])));
        float[] first = StepPlans.Run(native, Sparse(StepPlans.Build(new StepPart(sequence, [tokens[Prompt]])), reselect: true));
        float[] second = StepPlans.Run(native, Sparse(StepPlans.Build(new StepPart(sequence, [tokens[Prompt + 1]])), reselectSecondDecode));

        // Page 2 holds keys 32..47; the second decode's key 48 opens page 3.
        int firstSelected = Prompt / PageSize * PageSize;
        bool Visible(int layer, int query, int head, int key)
        {
            if (query < Prompt)
            {
                return true; // the prompt ran dense
            }
            if (Streaming[layer * 2 + head])
            {
                return key < Sink || key > query - Local;
            }
            int from = query == Prompt || reselectSecondDecode ? query / PageSize * PageSize : firstSelected;
            return key >= from;
        }
        double[][] expected = new ReferenceLlama(weights).Forward(tokens, Visible);
        double[][] dense = new ReferenceLlama(weights).Forward(tokens);
        AssertClose(expected[Prompt], dense[Prompt], first);
        AssertClose(expected[Prompt + 1], dense[Prompt + 1], second);
    }

    private static void AssertClose(double[] expected, double[] dense, float[] actual)
    {
        float[] e = Array.ConvertAll(expected, v => (float)v), d = Array.ConvertAll(dense, v => (float)v);
        double error = StepPlans.RelativeError(actual, e);
        Assert.True(error < 1e-4, $"max abs diff / max abs = {error:E3} against the masked reference");
        // The mask matters: the dense logits are measurably different.
        Assert.True(StepPlans.RelativeError(actual, d) > 1e-3, "sparse logits equal the dense ones; the mask had no effect");
    }

    private static StepPlan Sparse(StepPlan plan, bool reselect) => new()
    {
        TokenIds = plan.TokenIds, Positions = plan.Positions, QStarts = plan.QStarts, KvLengths = plan.KvLengths,
        PageStarts = plan.PageStarts, PageIds = plan.PageIds, LogitTokens = plan.LogitTokens,
        Sparse = new SparseStep
        {
            StreamingHeads = Streaming, DecodeSinkTokens = Sink, DecodeLocalTokens = Local, PrefillSinkTokens = Sink,
            PrefillLocalTokens = Local, BudgetTokens = PageSize, SelectionSlots = [2], Reselect = [reselect],
        },
    };
}
