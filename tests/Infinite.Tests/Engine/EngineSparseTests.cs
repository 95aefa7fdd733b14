using Infinite.Engine;

namespace Infinite.Tests.Engine;

public sealed class EngineSparseTests
{
    [Fact]
    public async Task Reselect_OnFirstDecodeStep_ThenEveryReuseInterval()
    {
        var executor = new FakeExecutor(pageSize: 4, pageCount: 64, selectionSlots: 3) { ExpectSparse = true };
        var sparse = new SparseOptions
        {
            ReuseInterval = 3, StreamingHeads = [true, false, false, true], DecodeSinkTokens = 8, DecodeLocalTokens = 16,
            PrefillSinkTokens = 4, PrefillLocalTokens = 32, BudgetTokens = 64, PerQueryHead = true,
        };
        await using var engine = new InferenceEngine(executor, new ByteTokenizer(),
            new EngineOptions { Sparse = sparse, MaxBatchTokens = 8 });
        int[] prompt = EngineHarness.RandomPrompt(new Random(4), 20);

        GenerationResult result = await engine.CompleteAsync(new GenerationRequest
        {
            PromptTokens = prompt, MaxTokens = 10, Sampling = SamplingOptions.Greedy,
        }).WaitAsync(EngineHarness.Bound);

        Assert.Equal(FakeModel.Reference(prompt, 10, SamplingOptions.Greedy), result.TokenIds);
        List<StepPlan> plans = executor.SnapshotPlans();
        Assert.Equal(3 + 9, plans.Count); // 20 prompt tokens in chunks of 8, then 9 decodes
        Assert.All(plans.Take(3), p => Assert.False(p.Sparse!.Reselect![0]));
        Assert.Equal([true, false, false, true, false, false, true, false, false],
            plans.Skip(3).Select(p => p.Sparse!.Reselect![0]));
        SparseStep step = plans[0].Sparse!;
        Assert.Equal([true, false, false, true], step.StreamingHeads!);
        Assert.Equal((8, 16, 4, 32, 64, true),
            (step.DecodeSinkTokens, step.DecodeLocalTokens, step.PrefillSinkTokens, step.PrefillLocalTokens, step.BudgetTokens, step.PerQueryHead));
        EngineHarness.AssertClean(engine, executor);
    }

    [Fact]
    public async Task RunningRequests_AreLimitedToSelectionSlots()
    {
        using var submitted = new ManualResetEventSlim();
        var executor = new FakeExecutor(pageSize: 4, pageCount: 256, selectionSlots: 2) { ExpectSparse = true, FirstStepGate = submitted };
        await using var engine = new InferenceEngine(executor, new ByteTokenizer(),
            new EngineOptions { Sparse = new SparseOptions() });
        var random = new Random(6);
        var requests = Enumerable.Range(0, 6).Select(_ => new GenerationRequest
        {
            PromptTokens = EngineHarness.RandomPrompt(random, random.Next(2, 30)),
            MaxTokens = random.Next(2, 15),
            Sampling = SamplingOptions.Greedy,
        }).ToList();

        var runs = requests.Select(r => engine.CompleteAsync(r)).ToList();
        submitted.Set();
        var results = await Task.WhenAll(runs).WaitAsync(EngineHarness.Bound);

        for (int i = 0; i < requests.Count; i++)
            Assert.Equal(FakeModel.Reference(requests[i].PromptTokens!, requests[i].MaxTokens!.Value, SamplingOptions.Greedy), results[i].TokenIds);
        List<StepPlan> plans = executor.SnapshotPlans();
        Assert.All(plans, p => Assert.True(p.SequenceCount <= 2));
        Assert.Contains(plans, p => p.SequenceCount == 2);
        EngineHarness.AssertClean(engine, executor); // the executor also checked slots are distinct and in range
    }
}
