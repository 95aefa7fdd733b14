namespace Infinite.Native.Tests;

/// <summary>
/// A float64 MicroAttention over keys and values kept by position, the contract of ARCHITECTURE.md
/// written as plainly as possible: softmax over the visible keys, natural-log lse, -inf and 0 when
/// no key is visible.
/// </summary>
internal static class AttentionReference
{
    /// <param name="q">[q_heads * head_dim] of one query row.</param>
    /// <param name="keys">Visible-key candidates per KV head: (position, k, v) with k and v [head_dim].</param>
    /// <returns>o [q_heads * head_dim] and lse [q_heads].</returns>
    public static (double[] O, double[] Lse) Attend(float[] q, int qHeads, int kvHeads, int headDim, double scale,
        int queryPosition, int kvLength, Func<int, IEnumerable<(int Position, float[] K, float[] V)>> keys)
    {
        var o = new double[qHeads * headDim];
        var lse = new double[qHeads];
        int group = qHeads / kvHeads;
        for (int g = 0; g < qHeads; g++)
        {
            var visible = keys(g / group).Where(k => k.Position < kvLength && k.Position <= queryPosition).ToList();
            if (visible.Count == 0)
            {
                lse[g] = double.NegativeInfinity;
                continue;
            }
            var scores = visible.Select(k =>
            {
                double dot = 0;
                for (int d = 0; d < headDim; d++)
                {
                    dot += (double)q[g * headDim + d] * k.K[d];
                }
                return dot * scale;
            }).ToArray();
            double max = scores.Max();
            double sum = scores.Sum(s => Math.Exp(s - max));
            lse[g] = max + Math.Log(sum);
            for (int i = 0; i < visible.Count; i++)
            {
                double w = Math.Exp(scores[i] - lse[g]);
                for (int d = 0; d < headDim; d++)
                {
                    o[g * headDim + d] += w * visible[i].V[d];
                }
            }
        }
        return (o, lse);
    }
}
