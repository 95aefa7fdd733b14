using Infinite.Engine;

namespace Infinite.Tests.Engine;

/// <summary>Bad requests and options fail with a message, before anything is queued.</summary>
public sealed class EngineValidationTests
{
    public static TheoryData<GenerationRequest, string> BadRequests => new()
    {
        { new GenerationRequest(), "empty" },
        { new GenerationRequest { Prompt = "" }, "empty" },
        { new GenerationRequest { PromptTokens = [] }, "empty" },
        { new GenerationRequest { Prompt = "a", PromptTokens = [1] }, "not both" },
        { new GenerationRequest { PromptTokens = [1, 258] }, "258" },
        { new GenerationRequest { PromptTokens = [-1] }, "-1" },
        { new GenerationRequest { Prompt = "a", MaxTokens = 0 }, "max_tokens" },
        { new GenerationRequest { PromptTokens = new int[100], MaxTokens = 29 }, "context of 128" },
        { new GenerationRequest { Prompt = "a", Sampling = new SamplingOptions { TopP = 0f } }, "top_p" },
        { new GenerationRequest { Prompt = "a", Sampling = new SamplingOptions { TopP = 1.5f } }, "top_p" },
        { new GenerationRequest { Prompt = "a", Sampling = new SamplingOptions { Temperature = -1f } }, "temperature" },
        { new GenerationRequest { Prompt = "a", Sampling = new SamplingOptions { Temperature = float.NaN } }, "temperature" },
        { new GenerationRequest { Prompt = "a", Sampling = new SamplingOptions { TopK = -1 } }, "top_k" },
        { new GenerationRequest { Prompt = "a", Sampling = new SamplingOptions { MinP = 2f } }, "min_p" },
        { new GenerationRequest { Prompt = "a", Sampling = new SamplingOptions { RepetitionPenalty = 0f } }, "repetition_penalty" },
        { new GenerationRequest { Prompt = "a", Sampling = new SamplingOptions { FrequencyPenalty = 3f } }, "frequency_penalty" },
        { new GenerationRequest { Prompt = "a", Sampling = new SamplingOptions { PresencePenalty = -3f } }, "presence_penalty" },
        { new GenerationRequest { Prompt = "a", Stop = [""] }, "Stop strings" },
    };

    [Theory]
    [MemberData(nameof(BadRequests))]
    public async Task BadRequest_ThrowsArgumentException_AndQueuesNothing(GenerationRequest request, string expected)
    {
        var executor = new FakeExecutor(pageSize: 4, pageCount: 64, contextLength: 128);
        await using var engine = new InferenceEngine(executor, new ByteTokenizer());

        var error = Assert.ThrowsAny<ArgumentException>(() => engine.GenerateAsync(request));

        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.Equal(0, engine.Stats.QueuedRequests);
        Assert.Empty(executor.SnapshotPlans());
    }

    [Fact]
    public async Task RequestBeyondTheWholeCache_NamesBothNumbers()
    {
        // 8 pages of 4 = 32 tokens of cache, context 4096.
        await using var engine = new InferenceEngine(new FakeExecutor(pageSize: 4, pageCount: 8), new ByteTokenizer());

        var error = Assert.Throws<ArgumentException>(() =>
            engine.GenerateAsync(new GenerationRequest { PromptTokens = new int[20], MaxTokens = 13 }));

        Assert.Contains("33 tokens", error.Message, StringComparison.Ordinal);
        Assert.Contains("capacity of 32 tokens", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DefaultMaxTokens_FillsWhatTheCacheAllows()
    {
        var executor = new FakeExecutor(pageSize: 4, pageCount: 8);
        await using var engine = new InferenceEngine(executor, new ByteTokenizer());

        GenerationResult result = await engine.CompleteAsync(new GenerationRequest
        {
            PromptTokens = EngineHarness.RandomPrompt(new Random(3), 20), Sampling = SamplingOptions.Greedy,
        }).WaitAsync(EngineHarness.Bound);

        Assert.Equal(12, result.TokenIds.Count);
        Assert.Equal(FinishReason.Length, result.FinishReason);
        EngineHarness.AssertClean(engine, executor);
    }

    [Fact]
    public void BadOptions_FailAtConstruction()
    {
        var tokenizer = new ByteTokenizer();
        Assert.Contains("MaxBatchTokens", Assert.Throws<ArgumentException>(() =>
            new InferenceEngine(new FakeExecutor(), tokenizer, new EngineOptions { MaxBatchTokens = 0 })).Message, StringComparison.Ordinal);
        Assert.Contains("SelectionSlots = 0", Assert.Throws<ArgumentException>(() =>
            new InferenceEngine(new FakeExecutor(selectionSlots: 0), tokenizer, new EngineOptions { Sparse = new SparseOptions() })).Message, StringComparison.Ordinal);
        Assert.Contains("model has 4", Assert.Throws<ArgumentException>(() =>
            new InferenceEngine(new FakeExecutor(selectionSlots: 2), tokenizer,
                new EngineOptions { Sparse = new SparseOptions { StreamingHeads = new bool[3] } })).Message, StringComparison.Ordinal);
        Assert.Contains("ReuseInterval", Assert.Throws<ArgumentException>(() =>
            new InferenceEngine(new FakeExecutor(selectionSlots: 2), tokenizer,
                new EngineOptions { Sparse = new SparseOptions { ReuseInterval = 0 } })).Message, StringComparison.Ordinal);
    }
}
