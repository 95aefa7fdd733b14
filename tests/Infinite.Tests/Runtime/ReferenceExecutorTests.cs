using Infinite.Engine;
using Infinite.Models;
using Infinite.Runtime;

namespace Infinite.Tests.Runtime;

public sealed class ReferenceExecutorTests : IDisposable
{
    private readonly TestWeights _weights = TestWeights.Random(TestWeights.TinyConfig(), seed: 11);

    public void Dispose() => _weights.Dispose();

    [Fact]
    public void One_step_matches_the_plain_forward()
    {
        var model = new ReferenceLlama(_weights);
        int[] prompt = StepPlans.RandomTokens(40, 64, seed: 1);
        double[][] expected = model.Forward(prompt);
        using var executor = new ReferenceExecutor(model, pageSize: 16, pageCount: 8);
        float[] logits = StepPlans.Prefill(executor, new TestSequence(new ShuffledPages(16, 8, seed: 2)), prompt, 40);
        for (int t = 0; t < prompt.Length; t++)
        {
            for (int v = 0; v < 64; v++)
            {
                Assert.Equal((float)expected[t][v], logits[t * 64 + v]);
            }
        }
        Assert.True(expected.SelectMany(r => r).Max(Math.Abs) > 0.1, "logits should not be near zero");
    }

    [Theory]
    [InlineData(new[] { 7, 13, 1 })]
    [InlineData(new[] { 1 })]
    [InlineData(new[] { 16, 3 })]
    public void Chunked_and_token_by_token_prefill_match_one_step(int[] chunks)
    {
        var model = new ReferenceLlama(_weights);
        int[] prompt = StepPlans.RandomTokens(45, 64, seed: 3);
        using var whole = new ReferenceExecutor(model, pageSize: 16, pageCount: 8);
        using var pieces = new ReferenceExecutor(model, pageSize: 16, pageCount: 8);
        float[] expected = StepPlans.Prefill(whole, new TestSequence(new ShuffledPages(16, 8, seed: 4)), prompt, 45);
        float[] actual = StepPlans.Prefill(pieces, new TestSequence(new ShuffledPages(16, 8, seed: 5)), prompt, chunks);
        Assert.True(StepPlans.RelativeError(actual, expected) < 1e-12);
    }

    [Fact]
    public void Two_sequences_batched_equal_each_alone()
    {
        var model = new ReferenceLlama(_weights);
        int[] a = StepPlans.RandomTokens(20, 64, seed: 6), b = StepPlans.RandomTokens(9, 64, seed: 7);
        using var batched = new ReferenceExecutor(model, pageSize: 16, pageCount: 8);
        var pages = new ShuffledPages(16, 8, seed: 8);
        TestSequence sa = new(pages), sb = new(pages);
        // A prefill of a and of b in one step, then decodes of both batched, then a decode beside a prefill chunk.
        float[] first = StepPlans.Run(batched, StepPlans.Build(new StepPart(sa, a[..12], true), new StepPart(sb, b[..5], true)));
        float[] second = StepPlans.Run(batched, StepPlans.Build(new StepPart(sb, b[5..6], true), new StepPart(sa, a[12..13], true)));
        float[] third = StepPlans.Run(batched, StepPlans.Build(new StepPart(sa, a[13..], true), new StepPart(sb, b[6..], true)));

        float[] aloneA = Alone(model, a, 12, 1), aloneB = Alone(model, b, 5, 1);
        Assert.Equal(aloneA[..(12 * 64)], first[..(12 * 64)]);
        Assert.Equal(aloneB[..(5 * 64)], first[(12 * 64)..]);
        Assert.Equal(aloneB[(5 * 64)..(6 * 64)], second[..64]);
        Assert.Equal(aloneA[(12 * 64)..(13 * 64)], second[64..]);
        Assert.Equal(aloneA[(13 * 64)..], third[..((a.Length - 13) * 64)]);
        Assert.Equal(aloneB[(6 * 64)..], third[((a.Length - 13) * 64)..]);
    }

    [Fact]
    public void Page_size_16_and_64_give_the_same_logits()
    {
        var model = new ReferenceLlama(_weights);
        int[] prompt = StepPlans.RandomTokens(70, 64, seed: 9);
        using var small = new ReferenceExecutor(model, pageSize: 16, pageCount: 16);
        using var large = new ReferenceExecutor(model, pageSize: 64, pageCount: 4);
        float[] a = StepPlans.Prefill(small, new TestSequence(new ShuffledPages(16, 16, seed: 10)), prompt, 30, 1, 17);
        float[] b = StepPlans.Prefill(large, new TestSequence(new ShuffledPages(64, 4, seed: 11)), prompt, 30, 1, 17);
        Assert.True(StepPlans.RelativeError(a, b) < 1e-12);
    }

    [Fact]
    public void Keys_are_read_back_through_the_page_table()
    {
        var model = new ReferenceLlama(_weights);
        using var executor = new ReferenceExecutor(model, pageSize: 16, pageCount: 4);
        var sequence = new TestSequence(new ShuffledPages(16, 4, seed: 12));
        StepPlans.Run(executor, StepPlans.Build(new StepPart(sequence, StepPlans.RandomTokens(20, 64, seed: 13))));
        // Point the first entry at a page that was never written: the decode must notice, not read garbage.
        int unused = Enumerable.Range(0, 4).First(p => !sequence.Pages.Contains(p));
        sequence.Pages[0] = unused;
        StepPlan plan = StepPlans.Build(new StepPart(sequence, [5]));
        var error = Assert.Throws<InvalidOperationException>(() => StepPlans.Run(executor, plan));
        Assert.Contains($"page {unused} slot 0", error.Message);
    }

    [Fact]
    public void Sparse_steps_are_refused()
    {
        using var executor = new ReferenceExecutor(_weights, pageSize: 16, pageCount: 4);
        StepPlan dense = StepPlans.Build(new StepPart(new TestSequence(new ShuffledPages(16, 4, 1)), [1, 2]));
        var sparse = new StepPlan
        {
            TokenIds = dense.TokenIds, Positions = dense.Positions, QStarts = dense.QStarts, KvLengths = dense.KvLengths,
            PageStarts = dense.PageStarts, PageIds = dense.PageIds, LogitTokens = dense.LogitTokens, Sparse = new SparseStep(),
        };
        var error = Assert.Throws<NotSupportedException>(() => StepPlans.Run(executor, sparse));
        Assert.Equal("the reference executor is dense", error.Message);
        Assert.Equal(0, executor.SelectionSlots);
    }

    public static TheoryData<string, string> BadPlans => new()
    {
        { "positions", "Positions[1] = 5" },
        { "page", "PageIds[0] = 9 is outside [0, 4)" },
        { "token", "TokenIds[0] = 64 is outside [0, 64)" },
        { "qstarts", "QStarts ends at 1 but TokenIds has 2" },
        { "pages", "sequence 0 has 0 pages of 16 tokens, too few" },
        { "logit", "LogitTokens[0] = 2 is outside [0, 2)" },
        { "logits", "logits has 10 floats" },
        { "twice", "written twice in one step" },
    };

    [Theory]
    [MemberData(nameof(BadPlans))]
    public void Bad_plans_throw_argument_exceptions_that_say_what_is_wrong(string fault, string message)
    {
        using var executor = new ReferenceExecutor(_weights, pageSize: 16, pageCount: 4);
        int[] tokens = fault == "token" ? [64, 1] : [3, 1];
        int[] positions = fault == "positions" ? [0, 5] : [0, 1];
        int[] qStarts = fault == "qstarts" ? [0, 1] : [0, 2];
        int[] pageIds = fault switch { "page" => [9], "pages" => [], _ => [2] };
        var plan = new StepPlan
        {
            TokenIds = tokens, Positions = positions, QStarts = qStarts, KvLengths = [2],
            PageStarts = [0, pageIds.Length], PageIds = pageIds, LogitTokens = fault == "logit" ? [2] : [1],
        };
        if (fault == "twice")
        {
            plan = new StepPlan
            {
                TokenIds = [3, 1], Positions = [0, 0], QStarts = [0, 1, 2], KvLengths = [1, 1],
                PageStarts = [0, 1, 2], PageIds = [2, 2], LogitTokens = [0],
            };
        }
        var logits = new float[fault == "logits" ? 10 : 64];
        var error = Assert.ThrowsAny<ArgumentException>(() => executor.Step(plan, logits));
        Assert.Contains(message, error.Message);
    }

    private static float[] Alone(ReferenceLlama model, int[] tokens, params int[] chunks)
    {
        using var executor = new ReferenceExecutor(model, pageSize: 16, pageCount: 8);
        return StepPlans.Prefill(executor, new TestSequence(new ShuffledPages(16, 8, seed: 99)), tokens, chunks);
    }
}
