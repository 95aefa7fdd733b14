using Infinite.Cluster;
using Infinite.Engine;
using Infinite.Tests.Engine;

namespace Infinite.Tests.Cluster;

/// <summary>The engine's scheduler over a cluster page space, driven the way the engine drives it, with the fake
/// executor holding a real paged cache: outputs are right only if page tables spanning instances are.</summary>
public sealed class ClusterSchedulerTests
{
    private const int PageSize = 4, PagesPerInstance = 8, Instances = 4;

    [Fact]
    public void FourSmallInstances_ServeRequestsLargerThanOneInstance_AndFreeEverything()
    {
        var space = new ClusterPageSpace(Instances, PagesPerInstance, PageSize, new BorrowingPolicy(new LinearCostModel()));
        var random = new Random(7);
        // 15 pages each for the long ones: no single 8-page instance could hold them.
        var lengths = new (int Prompt, int Max)[] { (40, 20), (9, 6), (12, 10), (44, 16), (5, 9), (21, 4) };
        var prompts = lengths.Select(l => EngineHarness.RandomPrompt(random, l.Prompt)).ToArray();

        var (outputs, failures, plans) = Run(space, prompts, lengths.Select(l => l.Max).ToArray());

        Assert.Empty(failures);
        for (int i = 0; i < prompts.Length; i++)
            Assert.Equal(FakeModel.Reference(prompts[i], lengths[i].Max, SamplingOptions.Greedy), outputs[i]);
        Assert.All(plans, p => Assert.NotNull(p.Homes));
        Assert.All(plans, p => Assert.Equal(p.SequenceCount, p.Homes!.Length));
        Assert.Contains(plans, p => Enumerable.Range(0, p.SequenceCount).Any(s =>
            p.PageIds[p.PageStarts[s]..p.PageStarts[s + 1]].Select(page => page / PagesPerInstance).Distinct().Count() > 1));
        Assert.True(plans.SelectMany(p => p.Homes!).Distinct().Count() > 1, "requests were homed on several instances");
        Assert.Equal(0, space.UsedPages);
        Assert.Equal(space.TotalPages, space.FreePages);
        ClusterAccounts.AssertBalanced(space, new Dictionary<long, List<int>>());
        Assert.All(space.RManagers, r => Assert.Equal(0, r.RunningRequests + r.Borrowed));
    }

    [Fact]
    public void StaticPolicy_FailsOnlyTheRequestsThatNeedMoreThanOneInstance()
    {
        var space = new ClusterPageSpace(Instances, PagesPerInstance, PageSize, new StaticPolicy());
        var random = new Random(8);
        // Request 1's prompt fills one instance exactly and fails at its first decode page; request 3's prompt
        // alone is beyond one instance and fails at admission.
        var lengths = new (int Prompt, int Max)[] { (9, 6), (32, 20), (12, 10), (44, 4) };
        var prompts = lengths.Select(l => EngineHarness.RandomPrompt(random, l.Prompt)).ToArray();

        var (outputs, failures, plans) = Run(space, prompts, lengths.Select(l => l.Max).ToArray());

        Assert.Equal([1, 3], failures.Select(f => f.Index).Order());
        Assert.Contains($"needs {PagesPerInstance + 1} KV pages but the cache has only {PagesPerInstance}",
            failures.Single(f => f.Index == 1).Message);
        Assert.Contains($"needs 11 KV pages but the cache has only {PagesPerInstance}", failures.Single(f => f.Index == 3).Message);
        Assert.Equal(FakeModel.Reference(prompts[0], 6, SamplingOptions.Greedy), outputs[0]);
        Assert.Equal(FakeModel.Reference(prompts[2], 10, SamplingOptions.Greedy), outputs[2]);
        Assert.All(plans, p => Assert.All(Enumerable.Range(0, p.SequenceCount), s =>
            Assert.All(p.PageIds[p.PageStarts[s]..p.PageStarts[s + 1]], page => Assert.Equal(p.Homes![s], page / PagesPerInstance))));
        Assert.Equal(space.TotalPages, space.FreePages);
        ClusterAccounts.AssertBalanced(space, new Dictionary<long, List<int>>());
    }

    [Fact]
    public void PagesMovedBetweenSteps_KeepEveryOutput()
    {
        // A policy that migrates random pages of running requests every plan: outputs stay right only if each move
        // copies the KV and commits the new page into the very table the scheduler uses.
        var policy = new RandomMoves(new BorrowingPolicy(new LinearCostModel()), new Random(3));
        var space = new ClusterPageSpace(Instances, PagesPerInstance, PageSize, policy,
            gManagerOptions: new GManagerOptions { MaxMoveTokensPerPlan = 4 * PageSize });
        var random = new Random(9);
        var lengths = new (int Prompt, int Max)[] { (30, 20), (9, 16), (12, 10), (20, 12), (5, 9) };
        var prompts = lengths.Select(l => EngineHarness.RandomPrompt(random, l.Prompt)).ToArray();

        var (outputs, failures, _) = Run(space, prompts, lengths.Select(l => l.Max).ToArray(), moves: true);

        Assert.Empty(failures);
        for (int i = 0; i < prompts.Length; i++)
            Assert.Equal(FakeModel.Reference(prompts[i], lengths[i].Max, SamplingOptions.Greedy), outputs[i]);
        Assert.True(space.MovesCommitted > 10, $"only {space.MovesCommitted} moves");
        Assert.Equal(space.TotalPages, space.FreePages);
        ClusterAccounts.AssertBalanced(space, new Dictionary<long, List<int>>());
    }

    [Fact]
    public void OnePool_PlansHaveNoHomes()
    {
        var (outputs, failures, plans) = Run(new PageAllocator(16), [EngineHarness.RandomPrompt(new Random(1), 10)], [5]);
        Assert.Empty(failures);
        Assert.Equal(5, outputs[0].Count);
        Assert.All(plans, p => Assert.Null(p.Homes));
    }

    /// <summary>Runs the requests to completion as the engine would (greedy sampling, small batches so prefill is
    /// chunked and pages run short), returning each request's tokens, the failures and every plan. The fake executor
    /// checks each plan; the KV "cache" of token ids read back through the page tables lives here, so moves can copy
    /// it (with <paramref name="moves"/>, the space's planned moves are applied after every step).</summary>
    private static (List<int>[] Outputs, List<(int Index, string Message)> Failures, List<StepPlan> Plans) Run(
        IKvPageSpace space, int[][] prompts, int[] maxTokens, bool moves = false)
    {
        var scheduler = new StepScheduler(space, PageSize, maxBatchTokens: 12, maxRunning: 8, sparse: null, selectionSlots: 0);
        var executor = new FakeExecutor(PageSize, space.TotalPages);
        var cache = new int[space.TotalPages, PageSize];
        var tokenizer = new ByteTokenizer();
        var sequences = new Sequence[prompts.Length];
        for (int i = 0; i < prompts.Length; i++)
        {
            var request = new GenerationRequest { PromptTokens = prompts[i], MaxTokens = maxTokens[i], Sampling = SamplingOptions.Greedy };
            sequences[i] = new Sequence(i + 1, prompts[i], maxTokens[i], request, new Sampler(SamplingOptions.Greedy, prompts[i]),
                new Utf8StreamDecoder(tokenizer), new StopStringMatcher(null));
            scheduler.Enqueue(sequences[i]);
        }
        var failures = new List<(int, string)>();
        var plans = new List<StepPlan>();
        for (int step = 0; step < 10_000 && !scheduler.IsIdle; step++)
        {
            var stepFailures = new List<(Sequence Sequence, string Message)>();
            var next = scheduler.Next(stepFailures);
            failures.AddRange(stepFailures.Select(f => ((int)f.Sequence.Id - 1, f.Message)));
            if (next is not { } planned)
                continue;
            StepPlan plan = planned.Plan;
            plans.Add(plan);
            var logits = new float[plan.LogitTokens.Length * FakeModel.Vocab];
            executor.Step(plan, logits); // validates the plan
            Forward(plan, cache, logits);
            foreach (ScheduledChunk c in planned.Chunks)
            {
                Sequence s = c.Sequence;
                s.Computed += c.Count;
                if (c.IsDecode)
                    s.DecodeSteps++;
                if (c.LogitRow < 0)
                    continue;
                s.Prefilled = true;
                int token = s.Sampler.Sample(logits.AsSpan(c.LogitRow * FakeModel.Vocab, FakeModel.Vocab));
                s.Sampler.Accept(token);
                s.Tokens.Add(token);
                if (s.Generated >= s.MaxTokens)
                    scheduler.Remove(s);
            }
            if (moves && space is ClusterPageSpace cluster)
                ApplyMoves(cluster, cache);
        }
        Assert.True(scheduler.IsIdle, "the scheduler finished every request");
        Assert.Empty(executor.SnapshotViolations());
        var outputs = sequences.Select(s => s.Tokens.Skip(s.PromptLength).ToList()).ToArray();
        return (outputs, failures, plans);
    }

    /// <summary>Writes the step's tokens through the page tables and computes logits from what reads back.</summary>
    private static void Forward(StepPlan plan, int[,] cache, float[] logits)
    {
        for (int s = 0; s < plan.SequenceCount; s++)
        {
            for (int t = plan.QStarts[s]; t < plan.QStarts[s + 1]; t++)
            {
                int pos = plan.Positions[t];
                cache[plan.PageIds[plan.PageStarts[s] + pos / PageSize], pos % PageSize] = plan.TokenIds[t];
            }
        }
        for (int r = 0; r < plan.LogitTokens.Length; r++)
        {
            int t = plan.LogitTokens[r];
            int s = 0;
            while (t >= plan.QStarts[s + 1])
                s++;
            var sequence = new List<int>();
            for (int pos = 0; pos <= plan.Positions[t]; pos++)
                sequence.Add(cache[plan.PageIds[plan.PageStarts[s] + pos / PageSize], pos % PageSize]);
            FakeModel.Logits(sequence, logits.AsSpan(r * FakeModel.Vocab, FakeModel.Vocab));
        }
    }

    /// <summary>Prepare, copy, commit (or abort every third), as the engine does between steps.</summary>
    private static void ApplyMoves(ClusterPageSpace space, int[,] cache)
    {
        int n = 0;
        foreach (PageMove move in space.PlanMoves())
        {
            if (space.PrepareMove(move) is not { } prepared)
                continue;
            if (++n % 3 == 0)
            {
                space.AbortMove(prepared);
                continue;
            }
            foreach (PageCopy copy in prepared.Copies)
            {
                for (int j = 0; j < PageSize; j++)
                {
                    cache[copy.NewPage, j] = cache[copy.OldPage, j];
                    cache[copy.OldPage, j] = -1; // stale KV must never be read again
                }
            }
            Assert.True(space.CommitMove(prepared));
        }
    }

    /// <summary>Places and borrows like the inner policy, but plans random moves of pages between instances.</summary>
    private sealed class RandomMoves(IPlacementPolicy inner, Random random) : IPlacementPolicy
    {
        public bool AllowsBorrowing => true;
        public int ChooseHome(IReadOnlyList<InstanceView> instances, int pages) => inner.ChooseHome(instances, pages);
        public IReadOnlyList<int> ChooseCreditors(IReadOnlyList<InstanceView> instances, int debtor) =>
            inner.ChooseCreditors(instances, debtor);

        public IReadOnlyList<PageMove> PlanMoves(ClusterView view)
        {
            var moves = new List<PageMove>();
            foreach (RequestPlacement r in view.Requests)
            {
                var from = r.Blocks.Where(b => b.Value > 1).Select(b => b.Key).ToList();
                if (from.Count == 0 || random.Next(2) == 0)
                    continue;
                int source = from[random.Next(from.Count)];
                moves.Add(new PageMove(r.RequestId, source, (source + random.Next(1, view.Instances.Count)) % view.Instances.Count,
                    random.Next(1, 3)));
            }
            return moves;
        }
    }
}
