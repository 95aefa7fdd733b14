using Infinite.Engine;

namespace Infinite.Tests.Engine;

/// <summary>Shared helpers: run a request to the end with a time bound, build prompts.</summary>
internal static class EngineHarness
{
    public static readonly TimeSpan Bound = TimeSpan.FromSeconds(5);

    public static async Task<(List<int> Tokens, string Text, FinishReason? Reason, List<string> Pieces)> Collect(
        InferenceEngine engine, GenerationRequest request, CancellationToken ct = default)
    {
        var tokens = new List<int>();
        var pieces = new List<string>();
        FinishReason? reason = null;
        await foreach (GeneratedToken t in engine.GenerateAsync(request, ct))
        {
            Assert.Null(reason); // nothing after the final token
            tokens.Add(t.TokenId);
            pieces.Add(t.Text);
            reason = t.FinishReason;
        }
        return (tokens, string.Concat(pieces), reason, pieces);
    }

    public static int[] RandomPrompt(Random random, int length)
    {
        var prompt = new int[length];
        prompt[0] = ByteTokenizer.Bos;
        for (int i = 1; i < length; i++)
            prompt[i] = 'a' + random.Next(26);
        return prompt;
    }

    public static void AssertClean(InferenceEngine engine, FakeExecutor executor)
    {
        Assert.Empty(executor.SnapshotViolations());
        EngineStats stats = engine.Stats;
        Assert.Equal(0, stats.RunningRequests);
        Assert.Equal(0, stats.QueuedRequests);
        Assert.Equal(0, stats.PagesUsed);
        Assert.Equal(stats.PagesTotal, stats.PagesFree);
    }
}
