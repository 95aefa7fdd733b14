using Infinite.Engine;
using Infinite.Models;
using Infinite.Native;
using Infinite.Tests.Runtime;

namespace Infinite.Tests.Engine;

/// <summary>The whole stack on a small synthetic GGUF: file, tokenizer, native executor, continuous batching.</summary>
public sealed class NativeEngineTests : IDisposable
{
    private static readonly LlamaConfig Small = SyntheticModel.DemoConfig with
    {
        Dim = 64, Layers = 2, QHeads = 4, KvHeads = 2, HeadDim = 16, FfnDim = 96, VocabSize = 320, ContextLength = 2048,
    };

    private static readonly string[] Prompts =
    [
        "The quick brown fox jumps over the lazy dog.",
        "Hello",
        "Long contexts need paged attention, and paged attention needs a page table per sequence.",
        "a b c d e f g h i j k l m n o p q r s t u v w x y z",
        "0123456789",
        "Ünïcödé and emoji 🙂 in one prompt",
    ];

    private readonly string _dir = Directory.CreateTempSubdirectory("infinite-engine-").FullName;
    private readonly string _model;

    public NativeEngineTests()
    {
        _model = Path.Combine(_dir, "small.gguf");
        SyntheticModel.WriteGguf(_model, Small, seed: 9);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private long _preemptions;

    private async Task<string[]> GreedyAsync(InfiniteOptions options, bool concurrent, int maxTokens = 24)
    {
        await using InfiniteEngine engine = await InfiniteEngine.LoadAsync(_model, options);
        GenerationRequest Request(string prompt) => new()
        {
            Prompt = prompt, MaxTokens = maxTokens, IgnoreEos = true, Sampling = SamplingOptions.Greedy,
        };
        string[] outputs;
        if (concurrent)
        {
            outputs = await Task.WhenAll(Prompts.Select(async p => string.Join(",", (await engine.CompleteAsync(Request(p))).TokenIds)));
        }
        else
        {
            outputs = new string[Prompts.Length];
            for (int i = 0; i < Prompts.Length; i++)
            {
                outputs[i] = string.Join(",", (await engine.CompleteAsync(Request(Prompts[i]))).TokenIds);
            }
        }
        EngineStats stats = engine.Engine.Stats;
        Assert.Equal(stats.PagesTotal, stats.PagesFree);
        _preemptions = stats.Preemptions;
        return outputs;
    }

    [Fact]
    public async Task Greedy_output_is_the_same_whatever_the_batch_composition_chunk_size_and_page_size()
    {
        var baseline = new InfiniteOptions { KvType = DataType.F32, PageSize = 64, KvMemoryBytes = 16 << 20, MaxBatchTokens = 2048 };
        string[] alone = await GreedyAsync(baseline, concurrent: false);
        Assert.All(alone, o => Assert.Equal(24, o.Split(',').Length));
        Assert.Equal(alone, await GreedyAsync(baseline, concurrent: true));
        Assert.Equal(alone, await GreedyAsync(baseline with { MaxBatchTokens = 7 }, concurrent: true));
        Assert.Equal(alone, await GreedyAsync(baseline with { PageSize = 16, MaxBatchTokens = 33 }, concurrent: true));
    }

    [Fact]
    public async Task Preemption_under_a_small_kv_cache_keeps_greedy_outputs()
    {
        var roomy = new InfiniteOptions { KvType = DataType.F32, PageSize = 16, KvMemoryBytes = 16 << 20 };
        string[] expected = await GreedyAsync(roomy, concurrent: false, maxTokens: 40);
        // 2 layers x 2 KV heads x 16 dims x 2 (K, V) x 4 bytes = 512 bytes per token: ~12 pages of 16 tokens,
        // far less than six requests of ~60 tokens need at once.
        var tight = roomy with { KvMemoryBytes = 100 * 1024 };
        Assert.Equal(expected, await GreedyAsync(tight, concurrent: true, maxTokens: 40));
        Assert.True(_preemptions > 0, "the tight cache never preempted: the test lost its point");
    }

    [Theory]
    [InlineData(8)]
    [InlineData(32)]
    public async Task Preemption_of_sparse_requests_keeps_greedy_outputs(int summaryBits)
    {
        // Decode and prefill windows differ and the budget (2 pages) is far below the contexts, so a preempted request
        // rebuilds its KV exactly only if its generated tokens are replayed as the decodes that first wrote them.
        var sparse = new SparseOptions
        {
            StreamingHeads = [true, false, true, false], DecodeSinkTokens = 16, DecodeLocalTokens = 16,
            PrefillSinkTokens = 16, PrefillLocalTokens = 1024, BudgetTokens = 16, ReuseInterval = 2,
        };
        var roomy = new InfiniteOptions { KvType = DataType.F32, PageSize = 16, KvMemoryBytes = 16 << 20, Sparse = sparse, SummaryBits = summaryBits };
        string[] expected = await GreedyAsync(roomy, concurrent: false, maxTokens: 60);
        Assert.Equal(0, _preemptions);
        var tight = roomy with { KvMemoryBytes = 100 * 1024 };
        Assert.Equal(expected, await GreedyAsync(tight, concurrent: true, maxTokens: 60));
        Assert.True(_preemptions > 0, "the tight cache never preempted: the test lost its point");
    }

    [Fact]
    public async Task Sparse_greedy_output_is_the_same_whatever_the_chunk_size()
    {
        // Small budgets split prompts into chunks that would leave a single token, which the native step would
        // attend as a decode (decode windows, a page selection) instead of prefilling it like the rest.
        var sparse = new SparseOptions
        {
            StreamingHeads = [true, false, true, false], DecodeSinkTokens = 16, DecodeLocalTokens = 16,
            PrefillSinkTokens = 16, PrefillLocalTokens = 1024, BudgetTokens = 16, ReuseInterval = 2,
        };
        var baseline = new InfiniteOptions { KvType = DataType.F32, PageSize = 16, KvMemoryBytes = 16 << 20, MaxBatchTokens = 2048, Sparse = sparse };
        string[] expected = await GreedyAsync(baseline, concurrent: false, maxTokens: 24);
        foreach (int budget in new[] { 5, 6, 7, 8, 9, 10, 11, 12, 13, 17, 23 })
            Assert.Equal(expected, await GreedyAsync(baseline with { MaxBatchTokens = budget }, concurrent: false, maxTokens: 24));
        // Budgets of 1 and 2 tokens cannot avoid one-token chunks: they must still make progress.
        foreach (int budget in new[] { 1, 2 })
        {
            string[] tiny = await GreedyAsync(baseline with { MaxBatchTokens = budget }, concurrent: true, maxTokens: 24)
                .WaitAsync(TimeSpan.FromSeconds(120));
            Assert.All(tiny, o => Assert.Equal(24, o.Split(',').Length));
        }
    }

    [Fact]
    public async Task Streamed_text_equals_the_decoded_tokens()
    {
        await using InfiniteEngine engine = await InfiniteEngine.LoadAsync(_model,
            new InfiniteOptions { KvMemoryBytes = 16 << 20 });
        var ids = new List<int>();
        string text = "";
        await foreach (GeneratedToken token in engine.GenerateAsync(new GenerationRequest
        {
            Prompt = "Stream me", MaxTokens = 30, IgnoreEos = true, Sampling = new SamplingOptions { Seed = 4 },
        }))
        {
            ids.Add(token.TokenId);
            text += token.Text;
        }
        Assert.Equal(30, ids.Count);
        Assert.Equal(engine.Tokenizer.Decode(ids.ToArray()), text);
    }
}
