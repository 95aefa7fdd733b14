using Infinite.Engine;
using Infinite.Models;
using Infinite.Native;
using Infinite.Runtime;
using Infinite.Tests.Runtime;

namespace Infinite.Tests.Engine;

/// <summary>
/// Streaming heads in rings (<see cref="StreamingStorage.Ring"/>) through the whole stack on a small synthetic
/// GGUF: greedy tokens equal the paged layout's for generations that run far past the rings, rings are held only
/// while a request runs (freed on finish and cancel), and bad configurations are refused with clear messages.
/// </summary>
public sealed class EngineRingTests : IDisposable
{
    private static readonly LlamaConfig Small = SyntheticModel.DemoConfig with
    {
        Dim = 64, Layers = 2, QHeads = 4, KvHeads = 2, HeadDim = 16, FfnDim = 96, VocabSize = 320, ContextLength = 2048,
    };

    // Layer 0 streams KV head 1, layer 1 both (no retrieval head there); small windows so rings wrap often.
    private static readonly bool[] Roles = [false, true, true, true];

    private readonly string _dir = Directory.CreateTempSubdirectory("infinite-ring-").FullName;
    private readonly string _model;

    public EngineRingTests()
    {
        _model = Path.Combine(_dir, "small.gguf");
        SyntheticModel.WriteGguf(_model, Small, seed: 19);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static InfiniteOptions Options(StreamingStorage storage) => new()
    {
        KvType = DataType.F32, PageSize = 16, KvMemoryBytes = 16 << 20, MaxBatchTokens = 24, MaxRunningRequests = 3,
        Sparse = new SparseOptions
        {
            StreamingHeads = Roles, DecodeSinkTokens = 8, DecodeLocalTokens = 24, PrefillSinkTokens = 8,
            PrefillLocalTokens = 24, BudgetTokens = 32, StreamingStorage = storage,
        },
    };

    private static readonly string[] Prompts =
    [
        "Long contexts need paged attention, and paged attention needs a page table per sequence.",
        "Hello",
        "a b c d e f g h i j k l m n o p q r s t u v w x y z",
    ];

    private async Task<string[]> GreedyAsync(InfiniteOptions options, int maxTokens)
    {
        await using InfiniteEngine engine = await InfiniteEngine.LoadAsync(_model, options);
        string[] outputs = await Task.WhenAll(Prompts.Select(async p => string.Join(",", (await engine.CompleteAsync(new GenerationRequest
        {
            Prompt = p, MaxTokens = maxTokens, IgnoreEos = true, Sampling = SamplingOptions.Greedy,
        })).TokenIds)));
        EngineStats stats = engine.Engine.Stats;
        Assert.Equal(stats.PagesTotal, stats.PagesFree);
        Assert.Equal(0, stats.RingPagesUsed);
        return outputs;
    }

    [Fact]
    public async Task Greedy_tokens_with_rings_equal_the_paged_layout_long_past_the_window()
    {
        // A ring: sink 1 page + a window of 24 + 24 - 1 = 47 keys (4 pages) = 5 pages of 16; 300 tokens wrap it 5 times.
        Assert.Equal(5, StreamingRing.PagesPerSequence(Options(StreamingStorage.Ring).Sparse!, 16, 24));
        string[] paged = await GreedyAsync(Options(StreamingStorage.Paged), maxTokens: 300);
        string[] ring = await GreedyAsync(Options(StreamingStorage.Ring), maxTokens: 300);
        Assert.All(ring, o => Assert.Equal(300, o.Split(',').Length));
        Assert.Equal(paged, ring);
    }

    [Fact]
    public async Task A_running_request_holds_its_ring_and_gives_it_back_when_cancelled()
    {
        await using InfiniteEngine engine = await InfiniteEngine.LoadAsync(_model, Options(StreamingStorage.Ring));
        EngineStats idle = engine.Engine.Stats;
        Assert.Equal(3 * 5, idle.RingPagesTotal);
        Assert.Equal(0, idle.RingPagesUsed);
        using var cancel = new CancellationTokenSource();
        int seen = 0;
        int usedWhileRunning = -1;
        // Read on the engine loop after a step (the tiny model can finish all its tokens before the consumer reads
        // the 20th, so reading Stats there would race the request's end).
        engine.Engine.StepCompleted += (_, _) =>
        {
            if (Volatile.Read(ref usedWhileRunning) < 0)
                Volatile.Write(ref usedWhileRunning, engine.Engine.Stats.RingPagesUsed);
        };
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (GeneratedToken _ in engine.GenerateAsync(new GenerationRequest
            {
                Prompt = "Hello", MaxTokens = 1000, IgnoreEos = true, Sampling = SamplingOptions.Greedy,
            }, cancel.Token))
            {
                if (++seen == 20)
                    cancel.Cancel();
            }
        });
        Assert.Equal(5, Volatile.Read(ref usedWhileRunning));
        // The cancellation is processed on the engine loop: wait for the ring to come back.
        for (int i = 0; i < 200 && engine.Engine.Stats.RunningRequests > 0; i++)
        {
            await Task.Delay(10);
        }
        EngineStats after = engine.Engine.Stats;
        Assert.Equal(0, after.RingPagesUsed);
        Assert.Equal(after.PagesTotal, after.PagesFree);
    }

    [Fact]
    public async Task Rings_with_several_instances_are_refused()
    {
        var error = await Assert.ThrowsAsync<ArgumentException>(() =>
            InfiniteEngine.LoadAsync(_model, Options(StreamingStorage.Ring) with { Instances = 2 }));
        Assert.Contains("StreamingStorage = Ring", error.Message);
        Assert.Contains("several instances", error.Message);
    }

    [Fact]
    public void The_engine_refuses_options_that_disagree_with_the_executors_rings()
    {
        using var weights = TestWeights.Random(TestWeights.TinyConfig(), seed: 231);
        SparseOptions ring = Options(StreamingStorage.Ring).Sparse!;
        var tokenizer = new ByteTokenizer();
        // A paged executor cannot serve rings.
        using (var paged = new NativeExecutor(weights, new NativeExecutorOptions { PageSize = 16, PageCount = 8, SelectionSlots = 2 }))
        {
            var error = Assert.Throws<ArgumentException>(() => new InferenceEngine(paged, tokenizer, new EngineOptions { Sparse = ring, MaxBatchTokens = 24 }));
            Assert.Contains("the executor keeps no rings", error.Message);
        }
        using var executor = new NativeExecutor(weights, new NativeExecutorOptions
        {
            PageSize = 16, PageCount = 8, SelectionSlots = 2, RingStreamingHeads = Roles, RingPagesPerSequence = 5,
        });
        Assert.Equal([1, 0], executor.Pool.Config.LayerKvHeads);
        Assert.Equal([1, 2], executor.RingPool!.Config.LayerKvHeads);
        Assert.Equal(10, executor.RingPool.Config.Pages);
        var tooSmall = Assert.Throws<ArgumentException>(() =>
            new InferenceEngine(executor, tokenizer, new EngineOptions { Sparse = ring, MaxBatchTokens = 64 }));
        Assert.Contains("The executor's rings have 5 pages but a request needs 8", tooSmall.Message);
        var roles = Assert.Throws<ArgumentException>(() => new InferenceEngine(executor, tokenizer,
            new EngineOptions { Sparse = ring with { StreamingHeads = [false, true, false, true] }, MaxBatchTokens = 24 }));
        Assert.Contains("Sparse.StreamingHeads must equal the streaming heads the executor split its pools by", roles.Message);
        var pagedOptions = Assert.Throws<ArgumentException>(() => new InferenceEngine(executor, tokenizer,
            new EngineOptions { Sparse = ring with { StreamingStorage = StreamingStorage.Paged }, MaxBatchTokens = 24 }));
        Assert.Contains("set Sparse.StreamingStorage = Ring", pagedOptions.Message);
    }
}
