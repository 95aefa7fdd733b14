using Infinite.Models;
using Infinite.Runtime;

namespace Infinite.Tests.Runtime;

public sealed class ReferenceLlamaTests
{
    // 1 layer, dim 4, one head of 4, ffn 4, vocab 3, tied embeddings, theta 100 (inverse frequencies 1 and 0.1).
    private static readonly LlamaConfig HandConfig = new(VocabSize: 3, Dim: 4, Layers: 1, QHeads: 1, KvHeads: 1,
        HeadDim: 4, FfnDim: 4, NormEps: 1e-6f, RopeTheta: 100f, RopeStyle: RopeStyle.Interleaved,
        RopeScaling: RopeScaling.None, TiedEmbeddings: true, ContextLength: 16);

    private static readonly double[][] Embedding = [[1, 2, -1, 0.5], [-0.5, 1, 2, -1], [0.3, -0.7, 0.2, 1.5]];

    [Fact]
    public void A_one_layer_dim_4_model_gives_the_logits_derived_by_hand()
    {
        // Norm weights 1, Wq = I, Wk = diag(1, 1, -1, 1), Wv = 2I, Wo = I, gate = up = down = I, so each
        // step below is a closed form of the layer.
        float[] Identity(double scale) => [(float)scale, 0, 0, 0, 0, (float)scale, 0, 0, 0, 0, (float)scale, 0, 0, 0, 0, (float)scale];
        float[] ones = [1, 1, 1, 1];
        using var weights = TestWeights.FromValues(HandConfig,
        [
            ("token_embd.weight", [3, 4], Embedding.SelectMany(r => r.Select(v => (float)v)).ToArray()),
            ("output_norm.weight", [4], ones),
            ("blk.0.attn_norm.weight", [4], ones),
            ("blk.0.ffn_norm.weight", [4], ones),
            ("blk.0.attn_q.weight", [4, 4], Identity(1)),
            ("blk.0.attn_k.weight", [4, 4], [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, -1, 0, 0, 0, 0, 1]),
            ("blk.0.attn_v.weight", [4, 4], Identity(2)),
            ("blk.0.attn_output.weight", [4, 4], Identity(1)),
            ("blk.0.ffn_gate.weight", [4, 4], Identity(1)),
            ("blk.0.ffn_up.weight", [4, 4], Identity(1)),
            ("blk.0.ffn_down.weight", [4, 4], Identity(1)),
        ]);
        using var executor = new ReferenceExecutor(weights, pageSize: 16, pageCount: 1);
        float[] logits = StepPlans.Prefill(executor, new TestSequence(new ShuffledPages(16, 1, 0)), [0, 1], 2);

        double[] e0 = Embedding[0], e1 = Embedding[1];
        double[] n0 = Norm(e0), n1 = Norm(e1);
        // Token 0 at position 0 sees only itself; RoPE at 0 is the identity: attention output = v0 = 2 n0.
        double[] h0 = Add(e0, Scale(n0, 2));
        // Token 1 at position 1: q1 = R(n1), k0 = D n0, k1 = R(D n1), with R rotating (0,1) by 1 rad and (2,3) by 0.1.
        double[] q1 = Rotate(n1), k0 = Flip(n0), k1 = Rotate(Flip(n1));
        double s0 = Dot(q1, k0) / 2, s1 = Dot(q1, k1) / 2; // scale 1/sqrt(4)
        double p0 = 1 / (1 + Math.Exp(s1 - s0)), p1 = 1 - p0;
        double[] h1 = Add(e1, Add(Scale(n0, 2 * p0), Scale(n1, 2 * p1)));
        double[][] expected = [Logits(Mlp(h0)), Logits(Mlp(h1))];

        for (int t = 0; t < 2; t++)
        {
            for (int v = 0; v < 3; v++)
            {
                Assert.Equal(expected[t][v], logits[t * 3 + v], 5);
            }
        }

        static double[] Mlp(double[] h)
        {
            double[] m = Norm(h);
            return Add(h, m.Select(x => x / (1 + Math.Exp(-x)) * x).ToArray());
        }

        static double[] Logits(double[] h)
        {
            double[] n = Norm(h);
            return Embedding.Select(row => Dot(row, n)).ToArray();
        }
    }

    [Fact]
    public void Llama3_scaling_keeps_high_frequencies_divides_low_ones_and_blends_between()
    {
        // head_dim 8, theta 10000: frequencies 1, 0.1, 0.01, 0.001 (wavelengths 6.28, 62.8, 628, 6283).
        // Original context 1000, low factor 1, high factor 4: keep below 250, divide above 1000, blend between.
        LlamaConfig config = HandConfig with
        {
            HeadDim = 8, RopeTheta = 10000f,
            RopeScaling = new RopeScaling(RopeScalingKind.Llama3, Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalContext: 1000),
        };
        double[] f = ReferenceLlama.InverseFrequencies(config);
        double smooth = (1000 / (2 * Math.PI / 0.01) - 1) / 3;
        Assert.Equal(1.0, f[0], 12);
        Assert.Equal(0.1, f[1], 12);
        Assert.Equal((1 - smooth) * 0.01 / 8 + smooth * 0.01, f[2], 12);
        Assert.Equal(0.001 / 8, f[3], 12);
    }

    [Fact]
    public void Linear_scaling_divides_positions_and_half_style_is_interleaved_permuted()
    {
        var random = new Random(5);
        double[] head = Enumerable.Range(0, 8).Select(_ => random.NextDouble() - 0.5).ToArray();
        LlamaConfig plain = HandConfig with { HeadDim = 8, Dim = 8, FfnDim = 8 };
        using var a = TestWeights.Random(plain, 1);
        using var b = TestWeights.Random(plain with { RopeScaling = new RopeScaling(RopeScalingKind.Linear, Factor: 4) }, 1);
        using var c = TestWeights.Random(plain with { RopeStyle = RopeStyle.Half }, 1);
        double[] atTwo = (double[])head.Clone(), atEightScaled = (double[])head.Clone();
        new ReferenceLlama(a).ApplyRope(atTwo, 2);
        new ReferenceLlama(b).ApplyRope(atEightScaled, 8);
        Assert.Equal(atTwo, atEightScaled);

        // Half pairs (i, i + 4) are interleaved pairs (2i, 2i + 1) after moving element 2i to i and 2i+1 to i+4.
        int[] toHalf = [0, 4, 1, 5, 2, 6, 3, 7];
        double[] interleaved = (double[])head.Clone();
        new ReferenceLlama(a).ApplyRope(interleaved, 7);
        var half = new double[8];
        for (int i = 0; i < 8; i++)
        {
            half[toHalf[i]] = head[i];
        }
        new ReferenceLlama(c).ApplyRope(half, 7);
        for (int i = 0; i < 8; i++)
        {
            Assert.Equal(interleaved[i], half[toHalf[i]], 12);
        }
        Assert.NotEqual(head[1], interleaved[1], 6);
    }

    [Fact]
    public void Missing_or_misshapen_tensors_are_named()
    {
        using var weights = TestWeights.Random(TestWeights.TinyConfig(), 3);
        weights.Reshape("blk.1.ffn_up.weight", [96, 63]);
        var error = Assert.Throws<ArgumentException>(() => new ReferenceLlama(weights));
        Assert.Contains("blk.1.ffn_up.weight has shape [96, 63], expected [96, 64]", error.Message);

        using var tied = TestWeights.Random(TestWeights.TinyConfig(tied: true), 3);
        var untied = new ConfigOverride(tied, tied.Config with { TiedEmbeddings = false });
        Assert.Contains("no tensor output.weight", Assert.Throws<ArgumentException>(() => new ReferenceLlama(untied)).Message);
    }

    private sealed class ConfigOverride(IWeightSource inner, LlamaConfig config) : IWeightSource
    {
        public LlamaConfig Config => config;
        public IReadOnlyList<TensorInfo> Tensors => inner.Tensors;
        public float[] ReadFloats(string name) => inner.ReadFloats(name);
        public nint GetPointer(TensorInfo tensor) => inner.GetPointer(tensor);
    }

    private static double[] Norm(double[] x)
    {
        double rms = Math.Sqrt(x.Sum(v => v * v) / x.Length + 1e-6f);
        return x.Select(v => v / rms).ToArray();
    }

    private static double[] Rotate(double[] x) =>
    [
        x[0] * Math.Cos(1) - x[1] * Math.Sin(1), x[0] * Math.Sin(1) + x[1] * Math.Cos(1),
        x[2] * Math.Cos(0.1) - x[3] * Math.Sin(0.1), x[2] * Math.Sin(0.1) + x[3] * Math.Cos(0.1),
    ];

    private static double[] Flip(double[] x) => [x[0], x[1], -x[2], x[3]];

    private static double[] Add(double[] a, double[] b) => a.Zip(b, (x, y) => x + y).ToArray();

    private static double[] Scale(double[] a, double s) => a.Select(x => x * s).ToArray();

    private static double Dot(double[] a, double[] b) => a.Zip(b, (x, y) => x * y).Sum();
}
