using Infinite.Engine;
using Infinite.Models;
using Infinite.Native;
using Infinite.Runtime;

namespace Infinite.Tests.Runtime;

/// <summary>A 128K-token context on the native executor: the KV cache is filled with random keys and values
/// (prefilling 128K tokens would take minutes here), then one decode step is checked against the float64
/// reference computed over exactly those keys and values.</summary>
public sealed class LongContextTests
{
    private const int Context = 128 * 1024;
    private const int PageSize = 256;

    [Fact]
    public void Decode_at_128K_tokens_matches_the_float64_reference()
    {
        LlamaConfig config = TestWeights.TinyConfig() with { ContextLength = Context, RopeTheta = 500000f };
        using var weights = TestWeights.Random(config, seed: 31);
        using var native = new NativeExecutor(weights,
            new NativeExecutorOptions { KvType = DataType.F32, PageSize = PageSize, PageCount = Context / PageSize });
        int width = config.KvHeads * config.HeadDim;
        int cached = Context - 1;
        var random = new Random(32);
        var keys = new float[config.Layers][];
        var values = new float[config.Layers][];
        var slots = Enumerable.Range(0, PageSize).ToArray();
        for (int layer = 0; layer < config.Layers; layer++)
        {
            keys[layer] = new float[cached * width];
            values[layer] = new float[keys[layer].Length];
            for (int i = 0; i < keys[layer].Length; i++)
            {
                keys[layer][i] = (float)(random.NextDouble() * 4 - 2);
                values[layer][i] = (float)(random.NextDouble() * 2 - 1);
            }
            for (int start = 0; start < cached; start += PageSize)
            {
                int count = Math.Min(PageSize, cached - start);
                int[] pages = Enumerable.Repeat(start / PageSize, count).ToArray();
                native.Pool.Append(layer, pages, slots.AsSpan(0, count),
                    keys[layer].AsSpan(start * width, count * width), values[layer].AsSpan(start * width, count * width));
            }
        }

        const int token = 17;
        var plan = new StepPlan
        {
            TokenIds = [token],
            Positions = [cached],
            QStarts = [0, 1],
            KvLengths = [Context],
            PageStarts = [0, Context / PageSize],
            PageIds = Enumerable.Range(0, Context / PageSize).ToArray(),
            LogitTokens = [0],
        };
        float[] actual = new float[config.VocabSize];
        Array.Fill(actual, float.NaN);
        native.Step(plan, actual);

        var reference = new ReferenceLlama(weights);
        var x = new double[config.Dim];
        reference.Embed(token, x);
        var q = new double[config.QHeads * config.HeadDim];
        var k = new double[width];
        var v = new double[width];
        var attention = new double[q.Length];
        for (int layer = 0; layer < config.Layers; layer++)
        {
            reference.ProjectQkv(layer, x, cached, q, k, v);
            float[] ks = keys[layer], vs = values[layer];
            reference.Attend(q, Context,
                i => i == cached ? k : Array.ConvertAll(ks[(i * width)..((i + 1) * width)], f => (double)f),
                i => i == cached ? v : Array.ConvertAll(vs[(i * width)..((i + 1) * width)], f => (double)f),
                attention);
            reference.FinishLayer(layer, x, attention);
        }
        var expected = new double[config.VocabSize];
        reference.Logits(x, expected);

        double error = StepPlans.RelativeError(actual, Array.ConvertAll(expected, e => (float)e));
        Assert.True(error < 1e-4, $"max abs diff / max abs = {error:E3} at a 128K context");
    }
}
