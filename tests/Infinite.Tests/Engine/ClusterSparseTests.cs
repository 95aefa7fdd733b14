using Infinite.Cluster;
using Infinite.Engine;
using Infinite.Models;
using Infinite.Native;

namespace Infinite.Tests.Engine;

/// <summary>
/// Sparse attention (LServe) on an engine over several in-process instances: streaming heads with the Λ mask and
/// retrieval heads that select pages every step (a global top-k at each home over every instance's page scores) give
/// the greedy tokens of the single-instance sparse engine, with prompts that outgrow one pool (borrowed pages) and
/// decodes past the budget; a reused selection (ReuseInterval above 1) is refused naming what is missing.
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

    /// <summary>About 9 pages of 16 tokens per instance when several (the long prompts borrow).</summary>
    private static InfiniteOptions Options(int instances, SparseOptions sparse) => new()
    {
        KvType = DataType.F32,
        PageSize = PageSize,
        KvMemoryBytes = instances == 1 ? 16 << 20 : instances * 80 * 1024,
        Instances = instances,
        Cluster = new ClusterOptions(),
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

    private async Task<string[]> RunAsync(InfiniteOptions options, int[][] prompts, bool concurrent)
    {
        await using InfiniteEngine engine = await InfiniteEngine.LoadAsync(_model, options);
        if (concurrent)
            return await Task.WhenAll(prompts.Select(async p => Tokens(await engine.CompleteAsync(Request(p)))));
        var outputs = new List<string>();
        foreach (int[] prompt in prompts)
            outputs.Add(Tokens(await engine.CompleteAsync(Request(prompt))));
        return [.. outputs];
    }

    [Theory]
    [InlineData(2, false)]
    [InlineData(2, true)]
    [InlineData(4, false)]
    public async Task Greedy_tokens_equal_the_single_instance_sparse_engine(int instances, bool perQueryHead)
    {
        SparseOptions sparse = Sparse(perQueryHead);
        // The long prompt outgrows one pool (about 9 pages): its pages spread over the instances.
        int[][] prompts = [Prompt(11 * PageSize + 7, 1), Prompt(70, 2), Prompt(45, 3)];
        string[] expected = await RunAsync(Options(1, sparse), prompts, concurrent: false);
        string[] alone = await RunAsync(Options(instances, sparse), [prompts[0]], concurrent: false);
        Assert.Equal(expected[0], alone[0]);
        string[] together = await RunAsync(Options(instances, sparse), prompts, concurrent: true);
        Assert.Equal(expected, together);
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
