using Infinite.Engine;

namespace Infinite.Tests.Engine;

public sealed class EngineBatchingTests
{
    [Fact]
    public async Task SingleGreedyRequest_MatchesTheModelRunAlone()
    {
        var executor = new FakeExecutor(pageSize: 4, pageCount: 64);
        await using var engine = new InferenceEngine(executor, new ByteTokenizer());
        int[] prompt = EngineHarness.RandomPrompt(new Random(1), 11);

        var (tokens, text, reason, _) = await EngineHarness.Collect(engine,
            new GenerationRequest { PromptTokens = prompt, MaxTokens = 25, Sampling = SamplingOptions.Greedy })
            .WaitAsync(EngineHarness.Bound);

        List<int> expected = FakeModel.Reference(prompt, 25, SamplingOptions.Greedy);
        Assert.Equal(expected, tokens);
        Assert.Equal(new string(expected.Select(t => (char)t).ToArray()), text);
        Assert.Equal(FinishReason.Length, reason);
        EngineHarness.AssertClean(engine, executor);
    }

    [Theory]
    [InlineData(2048, 16)]
    [InlineData(33, 8)]
    [InlineData(7, 4)]
    [InlineData(1, 1)]
    public async Task ConcurrentRequests_EachMatchesRunningAlone(int maxBatchTokens, int pageSize)
    {
        using var submitted = new ManualResetEventSlim();
        var executor = new FakeExecutor(pageSize, pageCount: 4096 / pageSize + 64) { FirstStepGate = submitted };
        int maxBatch = 0;
        executor.OnStep = plan => maxBatch = Math.Max(maxBatch, plan.SequenceCount);
        await using var engine = new InferenceEngine(executor, new ByteTokenizer(),
            new EngineOptions { MaxBatchTokens = maxBatchTokens });
        var random = new Random(maxBatchTokens * 31 + pageSize);
        var requests = Enumerable.Range(0, 20).Select(i => new GenerationRequest
        {
            PromptTokens = EngineHarness.RandomPrompt(random, random.Next(1, 60)),
            MaxTokens = random.Next(1, 30),
            // Half greedy, half seeded sampling: both must not depend on the batch they ran in.
            Sampling = i % 2 == 0 ? SamplingOptions.Greedy : new SamplingOptions { Temperature = 0.8f, TopK = 50, Seed = i },
        }).ToList();

        var runs = requests.Select(r => EngineHarness.Collect(engine, r)).ToList();
        submitted.Set();
        var results = await Task.WhenAll(runs).WaitAsync(EngineHarness.Bound);

        for (int i = 0; i < requests.Count; i++)
        {
            GenerationRequest r = requests[i];
            Assert.Equal(FakeModel.Reference(r.PromptTokens!, r.MaxTokens!.Value, r.Sampling), results[i].Tokens);
            Assert.Equal(FinishReason.Length, results[i].Reason);
        }
        if (maxBatchTokens > 1)
            Assert.True(maxBatch > 1, "requests should have shared steps");
        Assert.All(executor.SnapshotPlans(), p => Assert.True(p.TokenCount <= maxBatchTokens));
        EngineHarness.AssertClean(engine, executor);
    }

    [Fact]
    public async Task LongPrompt_IsChunked_WhileDecodesKeepFlowing()
    {
        var executor = new FakeExecutor(pageSize: 8, pageCount: 128);
        // Step 2 (the short request's first decode) waits until the long prompt is queued, so they must overlap.
        using var longQueued = new ManualResetEventSlim();
        int steps = 0;
        executor.OnStep = _ =>
        {
            if (++steps == 2)
                Assert.True(longQueued.Wait(EngineHarness.Bound));
        };
        await using var engine = new InferenceEngine(executor, new ByteTokenizer(), new EngineOptions { MaxBatchTokens = 16 });
        var random = new Random(5);
        int[] shortPrompt = EngineHarness.RandomPrompt(random, 4);
        int[] longPrompt = EngineHarness.RandomPrompt(random, 200);

        IAsyncEnumerator<GeneratedToken> first = engine.GenerateAsync(new GenerationRequest
        {
            PromptTokens = shortPrompt, MaxTokens = 40, Sampling = SamplingOptions.Greedy,
        }).GetAsyncEnumerator();
        Assert.True(await first.MoveNextAsync().AsTask().WaitAsync(EngineHarness.Bound)); // now decoding
        var longRun = EngineHarness.Collect(engine, new GenerationRequest
        {
            PromptTokens = longPrompt, MaxTokens = 3, Sampling = SamplingOptions.Greedy,
        });
        longQueued.Set();
        var rest = new List<int> { first.Current.TokenId };
        while (await first.MoveNextAsync().AsTask().WaitAsync(EngineHarness.Bound))
            rest.Add(first.Current.TokenId);
        await first.DisposeAsync();
        var longResult = await longRun.WaitAsync(EngineHarness.Bound);

        Assert.Equal(FakeModel.Reference(shortPrompt, 40, SamplingOptions.Greedy), rest);
        Assert.Equal(FakeModel.Reference(longPrompt, 3, SamplingOptions.Greedy), longResult.Tokens);
        // Steps that carry a prefill chunk of the long prompt and the short request's decode at once.
        List<StepPlan> plans = executor.SnapshotPlans();
        Assert.Contains(plans, p => p.SequenceCount == 2 && p.TokenCount == 16 && p.LogitTokens.Length == 1);
        EngineHarness.AssertClean(engine, executor);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task PagePressure_PreemptsAndRecomputes_WithSameOutputsAndAllPagesFreed(bool sparse)
    {
        // 30 pages of 4 = 120 tokens; 12 requests of up to 80 tokens each cannot all stay resident.
        using var submitted = new ManualResetEventSlim();
        var executor = new FakeExecutor(pageSize: 4, pageCount: 30, selectionSlots: 6)
        {
            FirstStepGate = submitted, ExpectSparse = sparse,
        };
        await using var engine = new InferenceEngine(executor, new ByteTokenizer(), new EngineOptions
        {
            MaxBatchTokens = 64, Sparse = sparse ? new SparseOptions { ReuseInterval = 2 } : null,
        });
        var random = new Random(9);
        var requests = Enumerable.Range(0, 12).Select(i => new GenerationRequest
        {
            PromptTokens = EngineHarness.RandomPrompt(random, random.Next(20, 40)),
            MaxTokens = random.Next(20, 40),
            Sampling = i % 3 == 0 ? new SamplingOptions { Temperature = 1f, Seed = 100 + i } : SamplingOptions.Greedy,
        }).ToList();

        var runs = requests.Select(r => EngineHarness.Collect(engine, r)).ToList();
        submitted.Set();
        var results = await Task.WhenAll(runs).WaitAsync(EngineHarness.Bound);

        for (int i = 0; i < requests.Count; i++)
            Assert.Equal(FakeModel.Reference(requests[i].PromptTokens!, requests[i].MaxTokens!.Value, requests[i].Sampling), results[i].Tokens);
        Assert.True(engine.Stats.Preemptions > 0, "the cache was small enough to force preemption");
        EngineHarness.AssertClean(engine, executor);
    }

    [Fact]
    public async Task Stats_AndStepEvents_CountTokens()
    {
        var executor = new FakeExecutor(pageSize: 4, pageCount: 64);
        await using var engine = new InferenceEngine(executor, new ByteTokenizer());
        var events = new List<StepCompletedEventArgs>();
        engine.StepCompleted += (_, e) => { lock (events) events.Add(e); };

        GenerationResult result = await engine.CompleteAsync(new GenerationRequest
        {
            PromptTokens = EngineHarness.RandomPrompt(new Random(2), 10), MaxTokens = 6, Sampling = SamplingOptions.Greedy,
        }).WaitAsync(EngineHarness.Bound);

        Assert.Equal(new GenerationUsage(10, 6), result.Usage);
        EngineStats stats = engine.Stats;
        Assert.Equal(6, stats.TokensOut);
        Assert.Equal(10 + 5, stats.TokensIn); // the last sampled token is never fed
        Assert.Equal(6, stats.Steps);
        lock (events)
        {
            Assert.Equal(6, events.Count);
            Assert.Equal(stats.TokensIn, events.Sum(e => e.Tokens));
            Assert.Equal(10, events[0].PrefillTokens);
            Assert.All(events.Skip(1), e => Assert.Equal((1, 1, 0), (e.BatchSize, e.DecodeTokens, e.PrefillTokens)));
            Assert.All(events, e => Assert.True(e.Succeeded));
        }
    }
}
