using Infinite.Engine;

namespace Infinite.Tests.Engine;

public sealed class SamplerTests
{
    private static float[] RandomLogits(Random random, int n) =>
        Enumerable.Range(0, n).Select(_ => (float)(random.NextDouble() * 8 - 4)).ToArray();

    private static int[] Histogram(SamplingOptions options, float[] logits, int draws)
    {
        var sampler = new Sampler(options, []);
        var counts = new int[logits.Length];
        var row = new float[logits.Length];
        for (int i = 0; i < draws; i++)
        {
            logits.CopyTo(row, 0);
            counts[sampler.Sample(row)]++;
        }
        return counts;
    }

    private static readonly float[] FourTokens = [MathF.Log(0.5f), MathF.Log(0.3f), MathF.Log(0.15f), MathF.Log(0.05f)];

    [Fact]
    public void Greedy_IsArgMax_AndTopKOfOneEqualsGreedy()
    {
        var random = new Random(1);
        for (int trial = 0; trial < 50; trial++)
        {
            float[] logits = RandomLogits(random, 1000 + trial);
            int expected = Array.IndexOf(logits, logits.Max());
            Assert.Equal(expected, new Sampler(SamplingOptions.Greedy, []).Sample(logits.ToArray()));
            Assert.Equal(expected, new Sampler(new SamplingOptions { TopK = 1, Seed = trial }, []).Sample(logits.ToArray()));
        }
    }

    [Fact]
    public void TopK_KeepsExactlyTheKLargest()
    {
        float[] logits = RandomLogits(new Random(2), 50);
        var allowed = logits.Select((l, i) => (l, i)).OrderByDescending(x => x.l).Take(5).Select(x => x.i).ToHashSet();
        int[] counts = Histogram(new SamplingOptions { TopK = 5, Temperature = 3f, Seed = 1 }, logits, 20000);
        for (int i = 0; i < counts.Length; i++)
            Assert.True(allowed.Contains(i) ? counts[i] > 0 : counts[i] == 0, $"token {i}: {counts[i]}");
    }

    [Theory]
    [InlineData(0.4f, 1)]
    [InlineData(0.75f, 2)]
    [InlineData(0.85f, 3)]
    [InlineData(0.99f, 4)]
    public void TopP_KeepsTheSmallestSetReachingP(float topP, int kept)
    {
        int[] counts = Histogram(new SamplingOptions { TopP = topP, Seed = 3 }, FourTokens, 20000);
        for (int i = 0; i < 4; i++)
            Assert.True(i < kept ? counts[i] > 0 : counts[i] == 0, $"token {i}: {counts[i]}");
        if (kept == 2) // renormalised over the survivors: 0.5 / 0.8
            Assert.InRange(counts[0] / 20000.0, 0.625 - 0.02, 0.625 + 0.02);
    }

    [Theory]
    [InlineData(0.4f, 2)]  // threshold 0.2
    [InlineData(0.25f, 3)] // threshold 0.125
    [InlineData(0.05f, 4)] // threshold 0.025
    public void MinP_DropsTokensBelowTheThreshold(float minP, int kept)
    {
        int[] counts = Histogram(new SamplingOptions { MinP = minP, Seed = 4 }, FourTokens, 20000);
        for (int i = 0; i < 4; i++)
            Assert.True(i < kept ? counts[i] > 0 : counts[i] == 0, $"token {i}: {counts[i]}");
    }

    [Theory]
    [InlineData(0, 0.9f, 0f)]
    [InlineData(0, 0.3f, 0f)]
    [InlineData(40, 1f, 0f)]
    [InlineData(40, 0.95f, 0f)]
    [InlineData(2000, 0.5f, 0f)]
    [InlineData(0, 0.9f, 0.05f)]
    [InlineData(100, 0.8f, 0.02f)]
    public void Filter_KeepsExactlyWhatASortOfTheWholeVocabularyKeeps(int topK, float topP, float minP)
    {
        var random = new Random(topK + (int)(topP * 100) + (int)(minP * 1000));
        const float temperature = 0.8f;
        for (int trial = 0; trial < 5; trial++)
        {
            float[] logits = RandomLogits(random, 5000);
            // Reference: sort everything, then top-k, min-p, and the smallest prefix reaching p.
            double max = logits.Max() / temperature;
            var sorted = logits.Select((l, i) => (Token: i, W: Math.Exp(l / temperature - max)))
                .OrderByDescending(x => x.W).ThenBy(x => x.Token).ToList();
            if (topK > 0)
                sorted = sorted.Take(topK).ToList();
            sorted = sorted.Where(x => x.W >= minP).ToList();
            double target = topP * sorted.Sum(x => x.W), mass = 0;
            var expected = sorted.TakeWhile(x => { bool take = mass < target; mass += x.W; return take; })
                .Select(x => x.Token).ToList();

            var sampler = new Sampler(new SamplingOptions { Temperature = temperature, TopK = topK, TopP = topP, MinP = minP }, []);
            int kept = sampler.Filter(logits, out double total);

            Assert.Equal(expected, sampler.KeptTokens(kept));
            Assert.True(total > 0);
        }
    }

    [Fact]
    public void Temperature_FrequenciesFollowTheSoftmax()
    {
        float[] logits = RandomLogits(new Random(5), 8);
        const float temperature = 0.7f;
        const int draws = 200000;
        double max = logits.Max();
        double[] p = logits.Select(l => Math.Exp((l - max) / temperature)).ToArray();
        double sum = p.Sum();

        int[] counts = Histogram(new SamplingOptions { Temperature = temperature, Seed = 6 }, logits, draws);

        for (int i = 0; i < logits.Length; i++)
            Assert.InRange(counts[i] / (double)draws, p[i] / sum - 0.005, p[i] / sum + 0.005);
    }

    [Fact]
    public void Penalties_ChangeExactlyTheRightLogits()
    {
        var sampler = new Sampler(new SamplingOptions
        {
            RepetitionPenalty = 2f, FrequencyPenalty = 0.5f, PresencePenalty = 0.25f,
        }, prompt: [0, 1]);
        sampler.Accept(2);
        sampler.Accept(2);
        sampler.Accept(3);
        float[] logits = [2f, -2f, 1f, 0.5f, -1f, 3f];

        sampler.ApplyPenalties(logits);

        // 0, 1: prompt only (repetition); 2: output twice; 3: output once; 4, 5: untouched.
        Assert.Equal([1f, -4f, 0.5f - 2 * 0.5f - 0.25f, 0.25f - 0.5f - 0.25f, -1f, 3f], logits);
    }

    [Fact]
    public void Penalties_CanChangeTheGreedyChoice()
    {
        var sampler = new Sampler(SamplingOptions.Greedy with { FrequencyPenalty = 1f }, []);
        Assert.Equal(0, sampler.Sample([2f, 1.5f]));
        sampler.Accept(0);
        Assert.Equal(1, sampler.Sample([2f, 1.5f]));
    }

    [Fact]
    public void SameSeed_SameDraws()
    {
        float[] logits = RandomLogits(new Random(7), 300);
        var options = new SamplingOptions { Temperature = 1.2f, TopP = 0.9f, TopK = 100, MinP = 0.01f, Seed = 99 };
        Assert.Equal(Histogram(options, logits, 500), Histogram(options, logits, 500));
        Assert.NotEqual(Histogram(options, logits, 500), Histogram(options with { Seed = 100 }, logits, 500));
    }
}
