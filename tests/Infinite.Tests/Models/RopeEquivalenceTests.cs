using Infinite.Models;

namespace Infinite.Tests.Models;

/// <summary>The GGUF (interleaved RoPE, permuted rows) and the Hugging Face folder (half RoPE) of one seed give
/// the same attention scores: the permutation makes them the same function, not just the same numbers.</summary>
public sealed class RopeEquivalenceTests : IDisposable
{
    private readonly ModelTestFiles _files = new();

    public void Dispose() => _files.Dispose();

    private static double[] Project(float[] w, int rows, double[] x)
    {
        var y = new double[rows];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < x.Length; c++) y[r] += w[r * x.Length + c] * x[c];
        return y;
    }

    /// <summary>Rotates each head of <paramref name="v"/> by position <paramref name="pos"/>, pairing elements
    /// (2i, 2i+1) when interleaved and (i, i + d/2) otherwise; pair i turns by pos * theta^(-2i/d).</summary>
    private static double[] Rope(double[] v, int headDim, int pos, double theta, bool interleaved)
    {
        var o = (double[])v.Clone();
        for (int h = 0; h < v.Length / headDim; h++)
            for (int i = 0; i < headDim / 2; i++)
            {
                int a = h * headDim + (interleaved ? 2 * i : i), b = h * headDim + (interleaved ? 2 * i + 1 : i + headDim / 2);
                double angle = pos * Math.Pow(theta, -2.0 * i / headDim);
                o[a] = v[a] * Math.Cos(angle) - v[b] * Math.Sin(angle);
                o[b] = v[a] * Math.Sin(angle) + v[b] * Math.Cos(angle);
            }
        return o;
    }

    [Fact]
    public void Attention_scores_agree_between_the_two_layouts()
    {
        var c = ModelTestFiles.Small;
        string folder = _files.PathOf("hf");
        SyntheticModel.WriteSafetensorsFolder(folder, c, seed: 31);
        using var gguf = ModelFile.Open(_files.WriteGguf(c, seed: 31));
        using var hf = ModelFile.Open(folder);
        var rng = new Random(8);
        var x1 = Enumerable.Range(0, c.Dim).Select(_ => rng.NextDouble() * 2 - 1).ToArray();
        var x2 = Enumerable.Range(0, c.Dim).Select(_ => rng.NextDouble() * 2 - 1).ToArray();
        int qRows = c.QHeads * c.HeadDim, kRows = c.KvHeads * c.HeadDim;

        double[] Scores(ModelFile m, bool interleaved)
        {
            var q = Rope(Project(m.ReadFloats("blk.1.attn_q.weight"), qRows, x1), c.HeadDim, 37, c.RopeTheta, interleaved);
            var k = Rope(Project(m.ReadFloats("blk.1.attn_k.weight"), kRows, x2), c.HeadDim, 5, c.RopeTheta, interleaved);
            var scores = new double[c.QHeads];
            for (int h = 0; h < c.QHeads; h++)
                for (int d = 0; d < c.HeadDim; d++)
                    scores[h] += q[h * c.HeadDim + d] * k[h / c.GroupSize * c.HeadDim + d];
            return scores;
        }
        var fromGguf = Scores(gguf, interleaved: gguf.Config.RopeStyle == RopeStyle.Interleaved);
        var fromHf = Scores(hf, interleaved: hf.Config.RopeStyle == RopeStyle.Interleaved);
        Assert.True(fromGguf.Max(Math.Abs) > 0.1);
        for (int h = 0; h < c.QHeads; h++) Assert.Equal(fromHf[h], fromGguf[h], 1e-9);
        // Without the matching style the scores differ: the test can tell the layouts apart.
        var wrong = Scores(gguf, interleaved: false);
        Assert.True(Enumerable.Range(0, c.QHeads).Max(h => Math.Abs(wrong[h] - fromHf[h])) > 1e-3);
    }
}
