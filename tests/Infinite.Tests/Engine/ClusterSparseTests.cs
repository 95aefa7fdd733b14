using Infinite.Cluster;
using Infinite.Engine;
using Infinite.Models;
using Infinite.Native;

namespace Infinite.Tests.Engine;

/// <summary>
/// Sparse attention (LServe) on an engine over several in-process instances: streaming heads with the Λ mask and
/// retrieval heads that select pages every step (a global top-k at each home over every instance's page scores) give
/// the greedy tokens of the single-instance sparse engine, with prompts that outgrow one pool (borrowed pages, from
/// any instance or only from creditors) and decodes past the budget; a reused selection (ReuseInterval above 1) is
/// refused naming what is missing.
/// The reference never preempts, so neither may the cluster: a preempted request recomputes its generated tokens as
/// a prefill, and a sparse prefill is not the sparse decode that first wrote their K/V (prefill Λ windows, no page
/// selection), so the tokens after it may change; every run here checks that nothing was preempted.
/// </summary>
public sealed class ClusterSparseTests : IDisposable
{
    private const int PageSize = 16;
    private const int MaxTokens = 12;

    private static readonly LlamaConfig Small = SyntheticModel.DemoConfig with
    {
        Dim = 64, Layers = 2, QHeads = 4, KvHeads = 2, HeadDim = 16, FfnDim = 96, VocabSize = 320, ContextLength = 2048,
    };

    private readonly string _dir = Directory.CreateTempSubdirectory("infinite-cluster-sparse-").FullName;
    private readonly string _model;

    public ClusterSparseTests()
    {
        _model = Path.Combine(_dir, "small.gguf");
        SyntheticModel.WriteGguf(_model, Small, seed: 17);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>One streaming head per layer; windows that are not whole pages; 2 pages per retrieval head.</summary>
    private static SparseOptions Sparse(bool perQueryHead = false, int reuse = 1) => new()
    {
        StreamingHeads = [true, false, false, true],
        DecodeSinkTokens = 5,
        DecodeLocalTokens = 20,
        PrefillSinkTokens = 3,
        PrefillLocalTokens = 24,
        BudgetTokens = 2 * PageSize,
        PerQueryHead = perQueryHead,
        ReuseInterval = reuse,
    };

    /// <summary>One roomy pool, or <paramref name="kibPerInstance"/> KiB per instance (80: 9 pages of 16 tokens, 120: 14).</summary>
    private static InfiniteOptions Options(int instances, SparseOptions sparse, bool borrowOnlyFromCreditors = false,
        int kibPerInstance = 80) => new()
    {
        KvType = DataType.F32,
        PageSize = PageSize,
        KvMemoryBytes = instances == 1 ? 16 << 20 : instances * kibPerInstance * 1024,
        Instances = instances,
        Cluster = new ClusterOptions { Borrowing = new BorrowingOptions { BorrowOnlyFromCreditors = borrowOnlyFromCreditors } },
        CommunicationTimeout = TimeSpan.FromSeconds(10),
        Sparse = sparse,
    };

    private static GenerationRequest Request(int[] prompt) => new()
    {
        PromptTokens = prompt, MaxTokens = MaxTokens, IgnoreEos = true, Sampling = SamplingOptions.Greedy,
    };

    private static int[] Prompt(int length, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, length).Select(_ => random.Next(1, Small.VocabSize)).ToArray();
    }

    private static string Tokens(GenerationResult result) => string.Join(",", result.TokenIds);

    /// <summary>The tokens of each prompt, the pages of one instance's pool, the most pages lent at once after a step,
    /// and the requests preempted.</summary>
    private sealed record Run(string[] Tokens, int PagesPerInstance, int MostLent, long Preemptions);

    private async Task<Run> RunAsync(InfiniteOptions options, int[][] prompts, bool concurrent)
    {
        await using InfiniteEngine engine = await InfiniteEngine.LoadAsync(_model, options);
        int mostLent = 0;
        engine.Engine.StepCompleted += (_, _) =>  // on the loop thread, the only writer
            Volatile.Write(ref mostLent, Math.Max(mostLent, engine.Engine.Stats.Instances.Sum(p => p.Lent)));
        string[] tokens;
        if (concurrent)
        {
            tokens = await Task.WhenAll(prompts.Select(async p => Tokens(await engine.CompleteAsync(Request(p)))));
        }
        else
        {
            var outputs = new List<string>();
            foreach (int[] prompt in prompts)
                outputs.Add(Tokens(await engine.CompleteAsync(Request(prompt))));
            tokens = [.. outputs];
        }
        return new Run(tokens, engine.Executor.PagesPerInstance, Volatile.Read(ref mostLent), engine.Engine.Stats.Preemptions);
    }

    [Theory]
    [InlineData(2, false, false)]
    [InlineData(2, true, false)]
    [InlineData(4, false, false)]
    [InlineData(2, false, true)]
    [InlineData(2, true, true)]
    [InlineData(4, false, true)]
    public async Task Greedy_tokens_equal_the_single_instance_sparse_engine(int instances, bool perQueryHead,
        bool borrowOnlyFromCreditors)
    {
        SparseOptions sparse = Sparse(perQueryHead);
        // 13, 6 and 4 pages once their 12 tokens are out: 23 in all.
        int[][] prompts = [Prompt(11 * PageSize + 7, 1), Prompt(70, 2), Prompt(45, 3)];
        Run expected = await RunAsync(Options(1, sparse), prompts, concurrent: false);
        Assert.Equal(0, expected.Preemptions);

        // Alone on 9-page pools, the long prompt outgrows its home and borrows.
        Run alone = await RunAsync(Options(instances, sparse, borrowOnlyFromCreditors), [prompts[0]], concurrent: false);
        Assert.True(prompts[0].Length > alone.PagesPerInstance * PageSize, "the long prompt fits one pool: the test lost its point");
        Assert.True(alone.MostLent > 0, "the long prompt borrowed no page");
        Assert.Equal(0, alone.Preemptions);
        Assert.Equal(expected.Tokens[0], alone.Tokens[0]);

        // Together, the pools hold every request at once, or something would be preempted. Two instances of 9 pages
        // cannot (18 < 23): 14 pages each, and the long prompt stays home; four of 9 can, and it borrows meanwhile.
        Run together = await RunAsync(Options(instances, sparse, borrowOnlyFromCreditors, instances == 2 ? 120 : 80), prompts,
            concurrent: true);
        Assert.Equal(0, together.Preemptions);
        if (instances == 4)
            Assert.True(together.MostLent > 0, "the long prompt borrowed no page among the others");
        Assert.Equal(expected.Tokens, together.Tokens);
    }

    [Fact]
    public async Task A_reused_selection_with_several_instances_is_refused_naming_it()
    {
        var error = await Assert.ThrowsAsync<ArgumentException>(() => InfiniteEngine.LoadAsync(_model, Options(2, Sparse(reuse: 4))));
        Assert.Contains("reusable selection with several instances is not supported yet", error.Message, StringComparison.Ordinal);
        Assert.Contains("ReuseInterval = 1", error.Message, StringComparison.Ordinal);
        // Streaming heads alone (no budget) reuse nothing: accepted.
        await using InfiniteEngine engine = await InfiniteEngine.LoadAsync(_model, Options(2, Sparse(reuse: 4) with { BudgetTokens = 0 }));
        Assert.Equal(2, engine.Executor.Instances);
    }
}
