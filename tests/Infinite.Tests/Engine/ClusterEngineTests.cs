using Infinite.Cluster;
using Infinite.Engine;
using Infinite.Models;
using Infinite.Native;

namespace Infinite.Tests.Engine;

/// <summary>
/// The engine over several in-process instances (a synthetic GGUF, the native core, the cluster page space): greedy
/// outputs equal one instance's when pools are too small for a prompt (borrowing), under page moves and after an
/// instance fails; the static policy rejects what one pool cannot hold; page accounting balances after every step.
/// </summary>
public sealed class ClusterEngineTests : IDisposable
{
    private const int PageSize = 16;
    private const int MaxTokens = 16;

    private static readonly LlamaConfig Small = SyntheticModel.DemoConfig with
    {
        Dim = 64, Layers = 2, QHeads = 4, KvHeads = 2, HeadDim = 16, FfnDim = 96, VocabSize = 320, ContextLength = 2048,
    };

    private readonly string _dir = Directory.CreateTempSubdirectory("infinite-cluster-").FullName;
    private readonly string _model;

    public ClusterEngineTests()
    {
        _model = Path.Combine(_dir, "small.gguf");
        SyntheticModel.WriteGguf(_model, Small, seed: 13);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>About 9 pages of 16 tokens per instance (512 bytes of K and V per token, plus summaries).</summary>
    private static InfiniteOptions Options(int instances, ClusterOptions? cluster = null) => new()
    {
        KvType = DataType.F32,
        PageSize = PageSize,
        KvMemoryBytes = instances == 1 ? 16 << 20 : instances * 80 * 1024,
        Instances = instances,
        Cluster = cluster ?? new ClusterOptions(),
        CommunicationTimeout = TimeSpan.FromSeconds(10),
    };

    private static GenerationRequest Request(int[] prompt, int maxTokens = MaxTokens) => new()
    {
        PromptTokens = prompt, MaxTokens = maxTokens, IgnoreEos = true, Sampling = SamplingOptions.Greedy,
    };

    private static int[] Prompt(int length, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, length).Select(_ => random.Next(1, Small.VocabSize)).ToArray();
    }

    /// <summary>One long prompt (more pages than one instance's pool) and five short ones.</summary>
    private static int[][] Prompts(int pagesPerInstance) =>
        [Prompt(pagesPerInstance * PageSize + 10, 1), Prompt(9, 2), Prompt(33, 3), Prompt(20, 4), Prompt(47, 5), Prompt(5, 6)];

    /// <summary>Each prompt alone on one instance with a roomy pool.</summary>
    private async Task<string[]> BaselineAsync(IEnumerable<int[]> prompts, int maxTokens = MaxTokens)
    {
        await using InfiniteEngine engine = await InfiniteEngine.LoadAsync(_model, Options(1));
        var outputs = new List<string>();
        foreach (int[] prompt in prompts)
            outputs.Add(Tokens(await engine.CompleteAsync(Request(prompt, maxTokens))));
        return [.. outputs];
    }

    private static string Tokens(GenerationResult result) => string.Join(",", result.TokenIds);

    /// <summary>Checks the page accounts after every step: own + lent + free == total on each instance, and what
    /// homes borrowed is what creditors lent.</summary>
    private static List<string> WatchAccounts(InfiniteEngine engine)
    {
        var violations = new List<string>();
        engine.Engine.StepCompleted += (_, _) =>
        {
            EngineStats stats = engine.Engine.Stats;
            foreach (InstancePageStats p in stats.Instances)
            {
                if (p.Own + p.Lent + p.Free != p.Total)
                    violations.Add($"step {stats.Steps}, instance {p.Instance}: {p.Own} own + {p.Lent} lent + {p.Free} free != {p.Total}");
            }
            int lent = stats.Instances.Sum(p => p.Lent), borrowed = stats.Instances.Sum(p => p.Borrowed);
            if (lent != borrowed)
                violations.Add($"step {stats.Steps}: {lent} pages lent but {borrowed} borrowed");
        };
        return violations;
    }

    private static void AssertAllFree(InfiniteEngine engine)
    {
        EngineStats stats = engine.Engine.Stats;
        Assert.Equal(engine.Executor.Instances, stats.Instances.Count);
        Assert.All(stats.Instances, p => Assert.Equal((p.Total, 0, 0, 0), (p.Free, p.Own, p.Lent, p.Borrowed)));
        Assert.Equal(0, stats.PagesUsed);
        Assert.Equal((0, 0), (stats.RunningRequests, stats.QueuedRequests));
    }

    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    public async Task Greedy_outputs_equal_one_instance_when_a_prompt_outgrows_every_pool(int instances)
    {
        await using InfiniteEngine engine = await InfiniteEngine.LoadAsync(_model, Options(instances));
        int pagesPerInstance = engine.Executor.PagesPerInstance;
        Assert.InRange(pagesPerInstance, 4, 16);
        int[][] prompts = Prompts(pagesPerInstance);
        Assert.True(prompts[0].Length > pagesPerInstance * PageSize, "the long prompt fits one pool: the test lost its point");
        string[] expected = await BaselineAsync(prompts);
        List<string> violations = WatchAccounts(engine);

        // Alone, then all at once (homes spread, the long one borrowing while others run).
        Assert.Equal(expected[0], Tokens(await engine.CompleteAsync(Request(prompts[0]))));
        string[] concurrent = await Task.WhenAll(prompts.Select(async p => Tokens(await engine.CompleteAsync(Request(p)))));

        Assert.Equal(expected, concurrent);
        Assert.Empty(violations);
        AssertAllFree(engine);
    }

    [Fact]
    public async Task The_static_policy_rejects_what_one_pool_cannot_hold_and_serves_the_rest()
    {
        await using InfiniteEngine engine = await InfiniteEngine.LoadAsync(_model,
            Options(2, new ClusterOptions { Policy = ClusterPolicy.Static }));
        int[][] prompts = Prompts(engine.Executor.PagesPerInstance);
        var error = await Assert.ThrowsAsync<ArgumentException>(() => engine.CompleteAsync(Request(prompts[0])));
        Assert.Contains("StaticPolicy never borrows", error.Message, StringComparison.Ordinal);
        Assert.Contains($"{engine.Executor.PagesPerInstance} pages", error.Message, StringComparison.Ordinal);

        string[] expected = await BaselineAsync(prompts[1..]);
        string[] outputs = await Task.WhenAll(prompts[1..].Select(async p => Tokens(await engine.CompleteAsync(Request(p)))));
        Assert.Equal(expected, outputs);
        Assert.All(engine.Engine.Stats.Instances, p => Assert.Equal(0, p.Lent));
        AssertAllFree(engine);
    }

    [Fact]
    public async Task Page_accounts_balance_after_every_step_with_cancellations()
    {
        await using InfiniteEngine engine = await InfiniteEngine.LoadAsync(_model, Options(3));
        List<string> violations = WatchAccounts(engine);
        int[][] prompts = Prompts(engine.Executor.PagesPerInstance);
        var runs = new List<Task>();
        for (int i = 0; i < 12; i++)
        {
            int[] prompt = prompts[i % prompts.Length];
            int stopAfter = i % 3 == 0 ? 2 + i % 5 : int.MaxValue;
            runs.Add(Task.Run(async () =>
            {
                using var cancel = new CancellationTokenSource();
                int seen = 0;
                try
                {
                    await foreach (GeneratedToken _ in engine.GenerateAsync(Request(prompt, 24), cancel.Token))
                    {
                        if (++seen == stopAfter)
                            await cancel.CancelAsync();
                    }
                }
                catch (OperationCanceledException)
                {
                }
            }));
        }
        await Task.WhenAll(runs);
        // A cancelled request's pages are freed by the loop before its next step: give it one.
        await Task.Delay(50);
        await engine.CompleteAsync(Request(prompts[1]));

        Assert.Empty(violations);
        AssertAllFree(engine);
    }

    [Fact]
    public async Task Page_moves_keep_greedy_outputs()
    {
        var cluster = new ClusterOptions
        {
            CustomPolicy = new ShufflingPolicy(),
            GManager = new GManagerOptions { MaxMoveTokensPerPlan = 4 * PageSize },
        };
        await using InfiniteEngine engine = await InfiniteEngine.LoadAsync(_model, Options(3, cluster));
        List<string> violations = WatchAccounts(engine);
        int[][] prompts = Prompts(engine.Executor.PagesPerInstance);
        string[] expected = await BaselineAsync(prompts, maxTokens: 32);

        string[] outputs = await Task.WhenAll(prompts.Select(async p => Tokens(await engine.CompleteAsync(Request(p, 32)))));
        Assert.True(engine.Engine.Stats.PagesMoved > 0, "no page moved: the test lost its point");
        Assert.Equal(expected, outputs);
        Assert.Empty(violations);
        AssertAllFree(engine);
    }

    [Fact]
    public async Task A_failed_instance_fails_only_the_requests_with_pages_there()
    {
        await using InfiniteEngine engine = await InfiniteEngine.LoadAsync(_model, Options(3));
        int[][] prompts = [Prompt(30, 11), Prompt(25, 12), Prompt(40, 13), Prompt(18, 14), Prompt(35, 15), Prompt(22, 16)];
        string[] expected = await BaselineAsync(prompts);
        engine.Engine.StepCompleted += (_, e) =>
        {
            if (engine.Engine.Stats.Steps == 6)
                engine.DistributedExecutor!.FailInstance(1);
        };

        var results = await Task.WhenAll(prompts.Select(async p =>
        {
            try
            {
                return (Tokens: Tokens(await engine.CompleteAsync(Request(p))), Error: (Exception?)null);
            }
            catch (InstanceFailedException e)
            {
                return (Tokens: "", Error: e);
            }
        }));

        Assert.Contains(results, r => r.Error is not null);
        Assert.Contains(results, r => r.Error is null);
        for (int i = 0; i < prompts.Length; i++)
        {
            if (results[i].Error is InstanceFailedException failed)
            {
                Assert.StartsWith("instance 1 failed", failed.Message, StringComparison.Ordinal);
                Assert.Equal([1], failed.Instances);
            }
            else
            {
                Assert.Equal(expected[i], results[i].Tokens);
            }
        }

        // New requests keep being served, on the instances that are left.
        string[] after = await Task.WhenAll(prompts.Take(3).Select(async p => Tokens(await engine.CompleteAsync(Request(p)))));
        Assert.Equal(expected[..3], after);
        EngineStats stats = engine.Engine.Stats;
        Assert.Equal(1, stats.FailedInstances);
        Assert.True(stats.Instances[1].Failed);
        Assert.All(stats.Instances, p => Assert.Equal(p.Total, p.Own + p.Lent + p.Free));
        AssertAllFree(engine);
    }

    /// <summary>Moves one page of every request from each instance holding some to the next instance, every plan:
    /// pages keep migrating while requests decode, so outputs prove the moves copy every layer exactly.</summary>
    private sealed class ShufflingPolicy : IPlacementPolicy
    {
        private readonly BorrowingPolicy _placement = new(new LinearCostModel());

        public bool AllowsBorrowing => true;

        public int ChooseHome(IReadOnlyList<InstanceView> instances, int pages) => _placement.ChooseHome(instances, pages);

        public IReadOnlyList<int> ChooseCreditors(IReadOnlyList<InstanceView> instances, int debtor) =>
            _placement.ChooseCreditors(instances, debtor);

        public IReadOnlyList<PageMove> PlanMoves(ClusterView view)
        {
            int n = view.Instances.Count;
            var moves = new List<PageMove>();
            foreach (RequestPlacement r in view.Requests.OrderBy(r => r.RequestId))
            {
                foreach ((int from, int blocks) in r.Blocks.OrderBy(b => b.Key))
                {
                    int to = (from + 1) % n;
                    if (blocks > 0 && !view.Instances[to].Failed && view.Instances[to].FreePages > 0)
                        moves.Add(new PageMove(r.RequestId, from, to, 1));
                }
            }
            return moves;
        }
    }
}
