using Infinite.Engine;

namespace Infinite.Tests.Runtime;

/// <summary>Builds <see cref="StepPlan"/>s the way the engine does and runs them.</summary>
internal static class StepPlans
{
    /// <summary>The plan for <paramref name="parts"/>; advances each sequence's length.</summary>
    public static StepPlan Build(params StepPart[] parts)
    {
        var tokens = new List<int>();
        var positions = new List<int>();
        var qStarts = new List<int> { 0 };
        var kvLengths = new List<int>();
        var pageStarts = new List<int> { 0 };
        var pageIds = new List<int>();
        var logitTokens = new List<int>();
        foreach (StepPart part in parts)
        {
            TestSequence s = part.Sequence;
            s.Reserve(s.Length + part.Tokens.Length);
            for (int i = 0; i < part.Tokens.Length; i++)
            {
                if (part.AllLogits || i == part.Tokens.Length - 1)
                {
                    logitTokens.Add(tokens.Count);
                }
                tokens.Add(part.Tokens[i]);
                positions.Add(s.Length + i);
            }
            s.Length += part.Tokens.Length;
            qStarts.Add(tokens.Count);
            kvLengths.Add(s.Length);
            pageIds.AddRange(s.Pages);
            pageStarts.Add(pageIds.Count);
        }
        return new StepPlan
        {
            TokenIds = [.. tokens],
            Positions = [.. positions],
            QStarts = [.. qStarts],
            KvLengths = [.. kvLengths],
            PageStarts = [.. pageStarts],
            PageIds = [.. pageIds],
            LogitTokens = [.. logitTokens],
        };
    }

    public static float[] Run(IModelExecutor executor, StepPlan plan)
    {
        var logits = new float[plan.LogitTokens.Length * executor.Config.VocabSize];
        executor.Step(plan, logits);
        return logits;
    }

    /// <summary>Logits of every token of <paramref name="prompt"/>, fed in chunks of the given sizes (cycled).</summary>
    public static float[] Prefill(IModelExecutor executor, TestSequence sequence, int[] prompt, params int[] chunks)
    {
        var all = new List<float>();
        for (int start = 0, c = 0; start < prompt.Length; c++)
        {
            int n = Math.Min(chunks[c % chunks.Length], prompt.Length - start);
            all.AddRange(Run(executor, Build(new StepPart(sequence, prompt[start..(start + n)], AllLogits: true))));
            start += n;
        }
        return [.. all];
    }

    public static int[] RandomTokens(int count, int vocab, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => random.Next(vocab)).ToArray();
    }

    /// <summary>max |a - b| / max |b|.</summary>
    public static double RelativeError(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected)
    {
        Assert.Equal(expected.Length, actual.Length);
        double diff = 0, scale = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            diff = Math.Max(diff, Math.Abs((double)actual[i] - expected[i]));
            scale = Math.Max(scale, Math.Abs((double)expected[i]));
        }
        return diff / scale;
    }

    public static int ArgMax(ReadOnlySpan<float> row)
    {
        int best = 0;
        for (int i = 1; i < row.Length; i++)
        {
            if (row[i] > row[best])
            {
                best = i;
            }
        }
        return best;
    }
}
