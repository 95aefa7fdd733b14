using Infinite.Engine;

namespace Infinite.Tests.Engine;

/// <summary>Cancellation, disposal, overload and executor failures.</summary>
public sealed class EngineLifecycleTests
{
    private static GenerationRequest Greedy(int seed, int promptLength, int maxTokens) => new()
    {
        PromptTokens = EngineHarness.RandomPrompt(new Random(seed), promptLength),
        MaxTokens = maxTokens,
        Sampling = SamplingOptions.Greedy,
    };

    [Fact]
    public async Task Cancellation_SurfacesAtOnce_AndFreesPagesBeforeTheNextStep()
    {
        var executor = new FakeExecutor(pageSize: 2, pageCount: 512);
        InferenceEngine? engine = null;
        using var bothQueued = new ManualResetEventSlim();
        using var cancelDone = new ManualResetEventSlim();
        int steps = 0;
        var probes = new List<(long Step, int Sequences, int PagesUsed, int PagesInPlan)>();
        executor.OnStep = plan =>
        {
            // Step 1 waits for both requests; step 6 waits until the test has cancelled (the loop would otherwise
            // finish both long before the consumer reads).
            int n = ++steps;
            if (n == 1)
                Assert.True(bothQueued.Wait(EngineHarness.Bound));
            if (n == 6)
                Assert.True(cancelDone.Wait(EngineHarness.Bound));
            EngineStats stats = engine!.Stats; // the loop holds no lock while the executor runs
            lock (probes)
                probes.Add((stats.Steps, plan.SequenceCount, stats.PagesUsed, plan.PageIds.Length));
        };
        await using (engine = new InferenceEngine(executor, new ByteTokenizer()))
        {
            using var cts = new CancellationTokenSource();
            var other = EngineHarness.Collect(engine, Greedy(2, 10, 60));
            IAsyncEnumerator<GeneratedToken> cancelled = engine.GenerateAsync(Greedy(1, 10, 1000), cts.Token).GetAsyncEnumerator();
            bothQueued.Set();
            for (int i = 0; i < 3; i++)
                Assert.True(await cancelled.MoveNextAsync().AsTask().WaitAsync(EngineHarness.Bound));

            await cts.CancelAsync();
            long stepsAtCancel = engine.Stats.Steps;
            cancelDone.Set();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled.MoveNextAsync().AsTask());
            await cancelled.DisposeAsync();
            var otherResult = await other.WaitAsync(EngineHarness.Bound);

            Assert.Equal(FakeModel.Reference(Greedy(2, 10, 60).PromptTokens!, 60, SamplingOptions.Greedy), otherResult.Tokens);
            lock (probes)
            {
                var after = probes.Where(p => p.Step > stepsAtCancel).ToList();
                Assert.NotEmpty(after);
                // Only the surviving request is in the cache from the first step planned after the cancellation.
                Assert.All(after, p => Assert.Equal((1, p.PagesInPlan), (p.Sequences, p.PagesUsed)));
                Assert.Contains(probes, p => p.Sequences == 2);
            }
            EngineHarness.AssertClean(engine, executor);
        }
    }

    [Fact]
    public async Task LeavingTheStreamEarly_CancelsTheRequest()
    {
        var executor = new FakeExecutor(pageSize: 4, pageCount: 64);
        using var left = new ManualResetEventSlim();
        int steps = 0;
        executor.OnStep = _ =>
        {
            if (++steps == 4)
                Assert.True(left.Wait(EngineHarness.Bound));
        };
        await using var engine = new InferenceEngine(executor, new ByteTokenizer());
        int seen = 0;
        await foreach (GeneratedToken _ in engine.GenerateAsync(Greedy(1, 5, 200)))
        {
            if (++seen == 2)
                break;
        }
        left.Set();
        // The next request's steps are planned after the abandoned one was reaped.
        await engine.CompleteAsync(Greedy(2, 5, 3)).WaitAsync(EngineHarness.Bound);

        Assert.True(engine.Stats.TokensOut <= 4 + 3, $"{engine.Stats.TokensOut} tokens generated");
        EngineHarness.AssertClean(engine, executor);
    }

    [Fact]
    public async Task FullQueue_ThrowsEngineOverloaded()
    {
        var executor = new FakeExecutor(pageSize: 4, pageCount: 64);
        using var entered = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        executor.OnStep = _ =>
        {
            entered.Set();
            Assert.True(release.Wait(EngineHarness.Bound));
        };
        await using var engine = new InferenceEngine(executor, new ByteTokenizer(),
            new EngineOptions { MaxRunningRequests = 1, MaxQueuedRequests = 2 });

        var running = engine.CompleteAsync(Greedy(1, 5, 3));
        Assert.True(entered.Wait(EngineHarness.Bound)); // admitted: the queue is empty again
        var queued = new[] { engine.CompleteAsync(Greedy(2, 5, 3)), engine.CompleteAsync(Greedy(3, 5, 3)) };
        var overloaded = Assert.Throws<EngineOverloadedException>(() => engine.GenerateAsync(Greedy(4, 5, 3)));
        Assert.Contains("2 of 2", overloaded.Message, StringComparison.Ordinal);
        Assert.Equal(2, engine.Stats.QueuedRequests);
        release.Set();

        await Task.WhenAll(queued.Append(running)).WaitAsync(EngineHarness.Bound);
        EngineHarness.AssertClean(engine, executor);
    }

    [Fact]
    public async Task ExecutorFailure_FailsThatStepsRequests_NotTheEngine()
    {
        var executor = new FakeExecutor(pageSize: 4, pageCount: 64);
        executor.OnStep = plan =>
        {
            if (plan.TokenIds.Contains('!'))
                throw new InvalidOperationException("device lost");
        };
        await using var engine = new InferenceEngine(executor, new ByteTokenizer());

        var error = await Assert.ThrowsAsync<InvalidOperationException>(
            () => engine.CompleteAsync(new GenerationRequest { Prompt = "boom!", MaxTokens = 4 }).WaitAsync(EngineHarness.Bound));
        Assert.Contains("device lost", error.Message, StringComparison.Ordinal);

        GenerationResult after = await engine.CompleteAsync(Greedy(1, 5, 4)).WaitAsync(EngineHarness.Bound);
        Assert.Equal(4, after.TokenIds.Count);
        EngineHarness.AssertClean(engine, executor);
    }

    [Fact]
    public async Task ExecutorFailure_FailsEveryRequestInThatStep_AndReportsTheStep()
    {
        using var submitted = new ManualResetEventSlim();
        var executor = new FakeExecutor(pageSize: 4, pageCount: 64) { FirstStepGate = submitted };
        executor.OnStep = plan =>
        {
            if (plan.SequenceCount == 2)
                throw new InvalidOperationException("kernel fault");
        };
        await using var engine = new InferenceEngine(executor, new ByteTokenizer());
        var failedSteps = 0;
        engine.StepCompleted += (_, e) =>
        {
            if (!e.Succeeded)
                Interlocked.Increment(ref failedSteps);
        };

        var runs = new[] { engine.CompleteAsync(Greedy(1, 5, 4)), engine.CompleteAsync(Greedy(2, 5, 4)) };
        submitted.Set();

        foreach (var run in runs)
        {
            var error = await Assert.ThrowsAsync<InvalidOperationException>(() => run.WaitAsync(EngineHarness.Bound));
            Assert.Contains("kernel fault", error.Message, StringComparison.Ordinal);
        }
        Assert.Equal(1, Volatile.Read(ref failedSteps));
        EngineHarness.AssertClean(engine, executor);
    }

    [Fact]
    public async Task Dispose_CancelsInFlight_RefusesNew_AndKeepsTheCallersExecutor()
    {
        var executor = new FakeExecutor(pageSize: 4, pageCount: 600);
        var engine = new InferenceEngine(executor, new ByteTokenizer());
        IAsyncEnumerator<GeneratedToken> stream = engine.GenerateAsync(Greedy(1, 5, 2000)).GetAsyncEnumerator();
        Assert.True(await stream.MoveNextAsync().AsTask().WaitAsync(EngineHarness.Bound));

        await engine.DisposeAsync().AsTask().WaitAsync(EngineHarness.Bound);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            while (await stream.MoveNextAsync())
            {
            }
        });
        Assert.Throws<ObjectDisposedException>(() => engine.GenerateAsync(Greedy(2, 5, 3)));
        Assert.False(executor.Disposed);
        Assert.Equal(0, engine.Stats.PagesUsed);
    }

    [Fact]
    public async Task Dispose_WithDrain_FinishesInFlight_AndDisposesAnOwnedExecutor()
    {
        var executor = new FakeExecutor(pageSize: 4, pageCount: 64);
        var engine = new InferenceEngine(executor, new ByteTokenizer(),
            new EngineOptions { DrainOnDispose = true, OwnsExecutor = true });
        var run = engine.CompleteAsync(Greedy(1, 5, 30));

        await engine.DisposeAsync().AsTask().WaitAsync(EngineHarness.Bound);

        GenerationResult result = await run.WaitAsync(EngineHarness.Bound);
        Assert.Equal(30, result.TokenIds.Count);
        Assert.True(executor.Disposed);
    }
}
