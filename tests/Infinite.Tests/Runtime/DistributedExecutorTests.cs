using Infinite.Engine;
using Infinite.Models;
using Infinite.Native;
using Infinite.Runtime;

namespace Infinite.Tests.Runtime;

/// <summary>
/// DistAttention end to end on the native core: the same steps on one instance with a big pool and on 2 and 4
/// in-process instances whose pages are spread (alternating, first pages remote, all remote, new tokens stored on a
/// peer) give the same logits (1e-4 relative) and the same greedy tokens; page moves keep them; a failed instance
/// fails only the steps that need it.
/// </summary>
public sealed class DistributedExecutorTests : IDisposable
{
    private const int PageSize = 16;
    private static readonly LlamaConfig Config = TestWeights.TinyConfig();
    private readonly TestWeights _weights = TestWeights.Random(Config, seed: 41);

    public void Dispose() => _weights.Dispose();

    private NativeExecutor Baseline() =>
        new(_weights, new NativeExecutorOptions { KvType = DataType.F32, PageSize = PageSize, PageCount = 128 });

    private DistributedExecutor Distributed(int instances, int pagesPerInstance = 32, double timeoutSeconds = 10) =>
        new(_weights, new DistributedExecutorOptions
        {
            Instances = instances,
            Instance = new NativeExecutorOptions { KvType = DataType.F32, PageSize = PageSize, PageCount = pagesPerInstance },
            CommunicationTimeout = TimeSpan.FromSeconds(timeoutSeconds),
        });

    private static int[] Tokens(int count, int seed) => StepPlans.RandomTokens(count, Config.VocabSize, seed);

    private static float[] Row(float[] logits, int row) => logits[(row * Config.VocabSize)..((row + 1) * Config.VocabSize)];

    /// <summary>Two prefill steps (chunks of mixed sizes, one sequence with logits for every token), then six
    /// batched greedy decodes; returns every step's logits and every decoded token.</summary>
    private static (List<float[]> Logits, List<int> Tokens) Scenario(IModelExecutor executor, int instances, int pagesPerInstance)
    {
        var layout = new DistributedLayout(instances, pagesPerInstance, PageSize, seed: 5);
        int n = instances;
        DistributedLayout.Sequence alternating = layout.Add(0, e => e % n);
        DistributedLayout.Sequence firstRemote = layout.Add(1 % n, e => e < 2 ? 2 % n : 1 % n);
        DistributedLayout.Sequence allRemote = layout.Add(n - 1, e => n == 1 ? 0 : (n + e % (n - 1)) % n);
        DistributedLayout.Sequence newOnPeer = layout.Add(0, e => e < 2 ? 0 : 1 % n);
        DistributedLayout.Sequence[] all = [alternating, firstRemote, allRemote, newOnPeer];
        var logits = new List<float[]>();
        var decoded = new List<int>();
        var next = new Dictionary<DistributedLayout.Sequence, int>();

        float[] first = StepPlans.Run(executor, layout.Build(
            (alternating, Tokens(33, 1), true), (firstRemote, Tokens(20, 2), false),
            (allRemote, Tokens(40, 3), false), (newOnPeer, Tokens(30, 4), false)));
        logits.Add(first);
        next[allRemote] = StepPlans.ArgMax(Row(first, 34));
        float[] second = StepPlans.Run(executor, layout.Build(
            (alternating, Tokens(37, 5), false), (firstRemote, Tokens(17, 6), false), (newOnPeer, Tokens(10, 7), false)));
        logits.Add(second);
        next[alternating] = StepPlans.ArgMax(Row(second, 0));
        next[firstRemote] = StepPlans.ArgMax(Row(second, 1));
        next[newOnPeer] = StepPlans.ArgMax(Row(second, 2));
        for (int step = 0; step < 6; step++)
        {
            float[] decode = StepPlans.Run(executor, layout.Build(all.Select(s => (s, new[] { next[s] }, false)).ToArray()));
            logits.Add(decode);
            for (int i = 0; i < all.Length; i++)
            {
                decoded.Add(next[all[i]]);
                next[all[i]] = StepPlans.ArgMax(Row(decode, i));
            }
        }
        return (logits, decoded);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4)]
    public void Spread_pages_give_the_single_instance_logits_and_greedy_tokens(int instances)
    {
        using NativeExecutor baseline = Baseline();
        (List<float[]> expected, List<int> expectedTokens) = Scenario(baseline, 1, 128);

        using DistributedExecutor distributed = Distributed(instances);
        Assert.Equal((instances, 32, instances * 32), (distributed.Instances, distributed.PagesPerInstance, distributed.PageCount));
        (List<float[]> actual, List<int> tokens) = Scenario(distributed, instances, 32);

        Assert.Equal(expected.Count, actual.Count);
        for (int step = 0; step < expected.Count; step++)
        {
            double error = StepPlans.RelativeError(actual[step], expected[step]);
            Assert.True(error < 1e-4, $"step {step} on {instances} instances: relative error {error:E3}");
        }
        Assert.Equal(expectedTokens, tokens);
    }

    [Fact]
    public void Moved_pages_keep_the_logits()
    {
        using NativeExecutor baseline = Baseline();
        using DistributedExecutor distributed = Distributed(2);
        var single = new DistributedLayout(1, 128, PageSize, seed: 1);
        var spread = new DistributedLayout(2, 32, PageSize, seed: 1);
        DistributedLayout.Sequence a = single.Add(0, _ => 0), b = spread.Add(0, e => e % 2);
        int[] prompt = Tokens(40, 9);
        float[] expected = StepPlans.Run(baseline, single.Build((a, prompt, false)));
        float[] actual = StepPlans.Run(distributed, spread.Build((b, prompt, false)));
        Assert.True(StepPlans.RelativeError(actual, expected) < 1e-4);

        // Entry 1 (on instance 1) goes home to 0, entry 2 (on 0) goes to 1.
        int toHome = spread.Take(0), toPeer = spread.Take(1);
        distributed.MovePages([(b.Pages[1], toHome), (b.Pages[2], toPeer)]);
        spread.Give(b.Pages[1]);
        spread.Give(b.Pages[2]);
        b.Pages[1] = toHome;
        b.Pages[2] = toPeer;

        int token = StepPlans.ArgMax(expected);
        for (int step = 0; step < 3; step++)
        {
            expected = StepPlans.Run(baseline, single.Build((a, [token], false)));
            actual = StepPlans.Run(distributed, spread.Build((b, [token], false)));
            double error = StepPlans.RelativeError(actual, expected);
            Assert.True(error < 1e-4, $"decode {step} after the moves: relative error {error:E3}");
            Assert.Equal(StepPlans.ArgMax(expected), StepPlans.ArgMax(actual));
            token = StepPlans.ArgMax(expected);
        }
    }

    [Fact]
    public void A_failed_instance_fails_the_steps_that_need_it_and_spares_the_others()
    {
        using NativeExecutor baseline = Baseline();
        using DistributedExecutor distributed = Distributed(3);
        var single = new DistributedLayout(1, 128, PageSize, seed: 2);
        var spread = new DistributedLayout(3, 32, PageSize, seed: 2);
        DistributedLayout.Sequence expectedX = single.Add(0, _ => 0);
        DistributedLayout.Sequence x = spread.Add(0, e => e % 2 == 0 ? 0 : 2), y = spread.Add(0, e => e % 2);
        int[] prompt = Tokens(40, 3);
        float[] first = StepPlans.Run(baseline, single.Build((expectedX, prompt, false)));
        StepPlans.Run(distributed, spread.Build((x, prompt, false), (y, Tokens(30, 4), false)));

        distributed.FailInstance(1);
        int token = StepPlans.ArgMax(first);
        var failure = Assert.Throws<InstanceFailedException>(() => StepPlans.Run(distributed, spread.Build((x, [token], false), (y, [token], false))));
        Assert.Equal([1], failure.Instances);
        Assert.StartsWith("instance 1 failed", failure.Message, StringComparison.Ordinal);
        Assert.Throws<InstanceFailedException>(() => distributed.MovePages([(y.Pages[1], spread.Take(0))]));

        // The step is re-run without the sequence that had pages on instance 1: the same token at the same position.
        x.Length--;
        float[] expected = StepPlans.Run(baseline, single.Build((expectedX, [token], false)));
        float[] actual = StepPlans.Run(distributed, spread.Build((x, [token], false)));
        Assert.True(StepPlans.RelativeError(actual, expected) < 1e-4);
    }

    [Fact]
    public void An_instance_dying_inside_a_step_is_named_and_the_next_steps_run_without_it()
    {
        using NativeExecutor baseline = Baseline();
        using DistributedExecutor inner = Distributed(3, timeoutSeconds: 2);
        var runners = new IInstanceRunner[] { inner.Runners[0], new DyingRunner((LocalInstance)inner.Runners[1], dieAtStep: 2), inner.Runners[2] };
        using var distributed = new DistributedExecutor(Config, PageSize, 32, runners, ownsRunners: false);
        var single = new DistributedLayout(1, 128, PageSize, seed: 6);
        var spread = new DistributedLayout(3, 32, PageSize, seed: 6);
        DistributedLayout.Sequence expectedX = single.Add(0, _ => 0);
        DistributedLayout.Sequence x = spread.Add(0, e => e % 2 == 0 ? 0 : 2), y = spread.Add(0, e => e % 2);
        int[] prompt = Tokens(40, 5);
        float[] first = StepPlans.Run(baseline, single.Build((expectedX, prompt, false)));
        StepPlans.Run(distributed, spread.Build((x, prompt, false), (y, Tokens(35, 6), false)));

        int token = StepPlans.ArgMax(first);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var failure = Assert.Throws<InstanceFailedException>(() => StepPlans.Run(distributed, spread.Build((x, [token], false), (y, [token], false))));
        Assert.Equal([1], failure.Instances);
        // The instance that sees the death aborts the step on its peers, so nobody waits out a timeout (2 s here).
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(1.5), $"the failed step took {watch.Elapsed}");

        // Messages left over from the failed step carry its id and are dropped: the re-run matches the baseline.
        x.Length--;
        float[] expected = StepPlans.Run(baseline, single.Build((expectedX, [token], false)));
        for (int step = 0; step < 2; step++)
        {
            float[] actual = StepPlans.Run(distributed, spread.Build((x, [token], false)));
            Assert.True(StepPlans.RelativeError(actual, expected) < 1e-4, $"step {step} after the failure");
            token = StepPlans.ArgMax(expected);
            expected = StepPlans.Run(baseline, single.Build((expectedX, [token], false)));
        }
    }

    [Fact]
    public void Instances_are_pluggable_and_step_on_dedicated_threads_with_one_step_id()
    {
        using DistributedExecutor inner = Distributed(2);
        var recorders = inner.Runners.Select(r => new RecordingRunner(r)).ToArray();
        using var executor = new DistributedExecutor(Config, PageSize, 32, recorders, ownsRunners: false);
        var spread = new DistributedLayout(2, 32, PageSize, seed: 3);
        DistributedLayout.Sequence s = spread.Add(1, e => e % 2);
        StepPlans.Run(executor, spread.Build((s, Tokens(20, 1), false)));
        StepPlans.Run(executor, spread.Build((s, [3], false)));

        foreach (RecordingRunner r in recorders)
        {
            Assert.Equal([1, 2], r.StepIds);
            Assert.Equal($"Infinite instance {r.Rank}", Assert.Single(r.Threads.Distinct()));
        }
    }

    [Fact]
    public void Bad_input_is_refused_naming_it()
    {
        using DistributedExecutor distributed = Distributed(2);
        Assert.Throws<ArgumentException>("moves", () => distributed.MovePages([(0, 1)]));
        Assert.Throws<ArgumentException>("moves", () => distributed.MovePages([(0, 64)]));
        Assert.Throws<ArgumentOutOfRangeException>("instance", () => distributed.FailInstance(2));
        var spread = new DistributedLayout(2, 32, PageSize, seed: 4);
        DistributedLayout.Sequence sequence = spread.Add(0, _ => 0);
        StepPlans.Run(distributed, spread.Build((sequence, Tokens(20, 1), false)));
        StepPlan plan = spread.Build((sequence, [1], false));
        var sparse = new StepPlan
        {
            TokenIds = plan.TokenIds, Positions = plan.Positions, QStarts = plan.QStarts, KvLengths = plan.KvLengths,
            PageStarts = plan.PageStarts, PageIds = plan.PageIds, LogitTokens = plan.LogitTokens,
            Sparse = new SparseStep { BudgetTokens = PageSize, SelectionSlots = [0], Reselect = [false] },
        };
        // A decode past the budget that would reuse its selection: several instances select every step.
        var reuse = Assert.Throws<NotSupportedException>(() => StepPlans.Run(distributed, sparse));
        Assert.Contains("reusable selection with several instances", reuse.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentOutOfRangeException>("options", () => new DistributedExecutor(_weights, new DistributedExecutorOptions { Instances = 0 }));
    }

    [Fact]
    public void Exchange_spans_that_disagree_are_refused_before_native_code()
    {
        using DistributedExecutor distributed = Distributed(2);
        var local = (LocalInstance)distributed.Runners[0];
        void Step(NativeStepExchange exchange, int logits = 64)
        {
            var plan = new NativeStepPlan
            {
                TokenIds = [1], Positions = [0], QStarts = [0, 1], KvLengths = [1], PageStarts = [0, 1], PageIds = [0],
                PagePositions = [0], LogitTokens = [0],
            };
            local.Model.Step(local.Pool, plan, exchange, new float[logits]);
        }

        Assert.Throws<ArgumentException>("exchange", () => Step(new NativeStepExchange()));
        var error = Assert.Throws<ArgumentException>("exchange", () => Step(new NativeStepExchange
        {
            Communicator = local.Communicator, StepId = 1, RemoteSequences = [0], RemoteRanks = [1, 1], RemoteSendsKv = [0],
        }));
        Assert.Contains("RemoteRanks (2)", error.Message, StringComparison.Ordinal);
        error = Assert.Throws<ArgumentException>("exchange", () => Step(new NativeStepExchange
        {
            Communicator = local.Communicator, StepId = 1, ServedRanks = [1], ServedReceivesKv = [1], ServedKvLengths = [17],
            ServedQStarts = [0, 1], ServedPositions = [16], ServedPageStarts = [0, 1], ServedPageIds = [3], ServedPagePositions = [16],
        }));
        Assert.Contains("ServedAppendPages", error.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>("logits", () => Step(new NativeStepExchange { Communicator = local.Communicator }, logits: 1));
    }

    /// <summary>A local instance whose process "dies" at the start of one step: its endpoint is destroyed while its
    /// peers are already exchanging with it.</summary>
    private sealed class DyingRunner(LocalInstance inner, long dieAtStep) : IInstanceRunner
    {
        public int Rank => inner.Rank;
        public bool IsFailed => inner.IsFailed;

        public void Step(InstancePlan plan, Span<float> logits)
        {
            if (plan.StepId == dieAtStep)
            {
                Thread.Sleep(50); // let the peers start the step and wait on this instance
                inner.Fail();
            }
            inner.Step(plan, logits);
        }

        public void SendPages(int peer, ReadOnlySpan<int> pages) => inner.SendPages(peer, pages);
        public void ReceivePages(int peer, ReadOnlySpan<int> pages) => inner.ReceivePages(peer, pages);
        public void Dispose() { }
    }

    /// <summary>Delegates to a real instance, recording the step ids and threads it was called with.</summary>
    private sealed class RecordingRunner(IInstanceRunner inner) : IInstanceRunner
    {
        public List<long> StepIds { get; } = [];
        public List<string?> Threads { get; } = [];
        public int Rank => inner.Rank;

        public void Step(InstancePlan plan, Span<float> logits)
        {
            lock (StepIds)
            {
                StepIds.Add(plan.StepId);
                Threads.Add(Thread.CurrentThread.Name);
            }
            inner.Step(plan, logits);
        }

        public void SendPages(int peer, ReadOnlySpan<int> pages) => inner.SendPages(peer, pages);
        public void ReceivePages(int peer, ReadOnlySpan<int> pages) => inner.ReceivePages(peer, pages);
        public void Dispose() { }
    }
}
