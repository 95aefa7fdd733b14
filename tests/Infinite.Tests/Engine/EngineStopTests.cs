using System.Text;
using Infinite.Engine;

namespace Infinite.Tests.Engine;

public sealed class EngineStopTests
{
    /// <summary>Makes the model write <paramref name="text"/> (UTF-8 bytes) after a prompt of
    /// <paramref name="promptLength"/> tokens, then EOS.</summary>
    private static FakeModel.Script Writes(string text, int promptLength)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        return sequence =>
        {
            int i = sequence.Count - promptLength;
            return i < bytes.Length ? bytes[i] : ByteTokenizer.Eos;
        };
    }

    private static async Task<(List<int> Tokens, string Text, FinishReason? Reason, List<string> Pieces)> Run(
        string script, GenerationRequest request)
    {
        var executor = new FakeExecutor(pageSize: 4, pageCount: 64);
        int promptLength = new ByteTokenizer().Encode(request.Prompt!).Length;
        executor.Script = Writes(script, promptLength);
        await using var engine = new InferenceEngine(executor, new ByteTokenizer());
        var result = await EngineHarness.Collect(engine, request with { Sampling = SamplingOptions.Greedy })
            .WaitAsync(EngineHarness.Bound);
        EngineHarness.AssertClean(engine, executor);
        return result;
    }

    [Fact]
    public async Task StopString_SpanningTokens_EndsBeforeIt_AndNeverStreamsIt()
    {
        var (tokens, text, reason, pieces) = await Run("Hello, world. The END is near",
            new GenerationRequest { Prompt = "x", MaxTokens = 100, Stop = ["END", "zzz"] });

        Assert.Equal("Hello, world. The ", text);
        Assert.Equal(FinishReason.Stop, reason);
        Assert.Equal("Hello, world. The EN".Length + 1, tokens.Count); // generation stops at the token completing it
        Assert.DoesNotContain(pieces, p => p.Contains('E', StringComparison.Ordinal));
    }

    [Fact]
    public async Task FalseStart_OfAStopString_IsReleased()
    {
        var (_, text, reason, pieces) = await Run("a wor world", new GenerationRequest
        {
            Prompt = "x", MaxTokens = 11, Stop = ["worm"],
        });

        Assert.Equal("a wor world", text);
        Assert.Equal(FinishReason.Length, reason);
        // "wor" was held back until the next character ruled the stop string out.
        Assert.Equal("", pieces[3]);
        Assert.Equal("", pieces[4]);
        Assert.Equal("wor ", pieces[5]);
    }

    [Fact]
    public async Task StopString_AtTheVeryEnd_IsCutEvenWhenMaxTokensEndsThere()
    {
        var (_, text, reason, _) = await Run("abc###", new GenerationRequest { Prompt = "x", MaxTokens = 6, Stop = ["###"] });

        Assert.Equal("abc", text);
        Assert.Equal(FinishReason.Stop, reason);
    }

    [Fact]
    public async Task MultiByteCharacters_AreNeverSplit()
    {
        var (tokens, text, _, pieces) = await Run("héllo wörld 🙂!", new GenerationRequest { Prompt = "x", MaxTokens = 100 });

        Assert.Equal("héllo wörld 🙂!", text);
        Assert.Equal(Encoding.UTF8.GetByteCount("héllo wörld 🙂!") + 1, tokens.Count); // + EOS
        Assert.DoesNotContain(pieces, p => p.Contains('\uFFFD', StringComparison.Ordinal));
        Assert.Contains("🙂", pieces);
    }

    [Fact]
    public async Task Eos_EndsWithStop_AndIsNotRendered()
    {
        var (tokens, text, reason, _) = await Run("hello", new GenerationRequest { Prompt = "x", MaxTokens = 50 });

        Assert.Equal("hello", text);
        Assert.Equal(FinishReason.Stop, reason);
        Assert.Equal(ByteTokenizer.Eos, tokens[^1]);
        Assert.Equal(6, tokens.Count);
    }

    [Fact]
    public async Task IgnoreEos_RunsToMaxTokens()
    {
        var (tokens, _, reason, _) = await Run("hi", new GenerationRequest { Prompt = "x", MaxTokens = 8, IgnoreEos = true });

        Assert.Equal(FinishReason.Length, reason);
        Assert.Equal(8, tokens.Count);
        Assert.Equal(ByteTokenizer.Eos, tokens[2]);
    }

    [Fact]
    public async Task CompleteAsync_ReportsTextTokensReasonAndUsage()
    {
        var executor = new FakeExecutor(pageSize: 4, pageCount: 64) { Script = Writes("abcdefgh", promptLength: 3) };
        await using var engine = new InferenceEngine(executor, new ByteTokenizer());

        GenerationResult result = await engine.CompleteAsync(new GenerationRequest
        {
            Prompt = "xy", MaxTokens = 5, Sampling = SamplingOptions.Greedy,
        }).WaitAsync(EngineHarness.Bound);

        Assert.Equal("abcde", result.Text);
        Assert.Equal("abcde".Select(c => (int)c), result.TokenIds);
        Assert.Equal(FinishReason.Length, result.FinishReason);
        Assert.Equal(new GenerationUsage(3, 5), result.Usage); // BOS + "xy"
    }

    [Fact]
    public async Task SameSeed_SameOutput_DifferentSeed_DifferentOutput()
    {
        var executor = new FakeExecutor(pageSize: 4, pageCount: 64);
        await using var engine = new InferenceEngine(executor, new ByteTokenizer());
        GenerationRequest Request(int seed) => new()
        {
            Prompt = "seeded", MaxTokens = 20, Sampling = new SamplingOptions { Temperature = 1.5f, Seed = seed },
        };

        GenerationResult a = await engine.CompleteAsync(Request(42)).WaitAsync(EngineHarness.Bound);
        GenerationResult b = await engine.CompleteAsync(Request(42)).WaitAsync(EngineHarness.Bound);
        GenerationResult c = await engine.CompleteAsync(Request(43)).WaitAsync(EngineHarness.Bound);

        Assert.Equal(a.TokenIds, b.TokenIds);
        Assert.NotEqual(a.TokenIds, c.TokenIds);
    }
}
