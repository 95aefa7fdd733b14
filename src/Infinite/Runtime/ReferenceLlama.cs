using Infinite.Models;

namespace Infinite.Runtime;

/// <summary>
/// A float64 forward of a Llama-family model: the yardstick the native model and the engine are tested
/// against. Plain loops, clarity over speed. The forward is split into the pieces a paged executor needs
/// (<see cref="Embed"/>, <see cref="ProjectQkv"/>, <see cref="Attend"/>, <see cref="FinishLayer"/>,
/// <see cref="Logits"/>); <see cref="Forward"/> strings them together over one whole sequence.
/// </summary>
public sealed class ReferenceLlama
{
    private readonly double[] _embedding;
    private readonly double[] _outputNorm;
    private readonly double[] _lmHead;
    private readonly ReferenceLayer[] _layers;
    private readonly double[] _inverseFrequencies;

    /// <summary>Reads every weight of <paramref name="weights"/> (as float32, widened to float64).</summary>
    /// <exception cref="ArgumentException">A tensor is missing or its shape disagrees with the config.</exception>
    public ReferenceLlama(IWeightSource weights)
    {
        ArgumentNullException.ThrowIfNull(weights);
        LlamaConfig c = weights.Config ?? throw new ArgumentException("the weight source has no config", nameof(weights));
        ValidateConfig(c);
        Config = c;
        var byName = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
        foreach (TensorInfo t in weights.Tensors)
        {
            byName[t.Name] = t;
        }
        int q = c.QHeads * c.HeadDim, kv = c.KvHeads * c.HeadDim;
        _embedding = Read(weights, byName, "token_embd.weight", c.VocabSize, c.Dim);
        _outputNorm = Read(weights, byName, "output_norm.weight", c.Dim);
        _lmHead = c.TiedEmbeddings ? _embedding : Read(weights, byName, "output.weight", c.VocabSize, c.Dim);
        _layers = new ReferenceLayer[c.Layers];
        for (int l = 0; l < c.Layers; l++)
        {
            string p = $"blk.{l}.";
            _layers[l] = new ReferenceLayer(
                AttnNorm: Read(weights, byName, p + "attn_norm.weight", c.Dim),
                Q: Read(weights, byName, p + "attn_q.weight", q, c.Dim),
                K: Read(weights, byName, p + "attn_k.weight", kv, c.Dim),
                V: Read(weights, byName, p + "attn_v.weight", kv, c.Dim),
                O: Read(weights, byName, p + "attn_output.weight", c.Dim, q),
                FfnNorm: Read(weights, byName, p + "ffn_norm.weight", c.Dim),
                Gate: Read(weights, byName, p + "ffn_gate.weight", c.FfnDim, c.Dim),
                Up: Read(weights, byName, p + "ffn_up.weight", c.FfnDim, c.Dim),
                Down: Read(weights, byName, p + "ffn_down.weight", c.Dim, c.FfnDim));
        }
        _inverseFrequencies = InverseFrequencies(c);
    }

    public LlamaConfig Config { get; }

    /// <summary>The RoPE inverse frequency of each rotated pair, after frequency scaling (Llama3).</summary>
    public IReadOnlyList<double> RopeInverseFrequencies => _inverseFrequencies;

    /// <summary>Logits of every position of <paramref name="tokens"/> run as one sequence from position 0.
    /// <paramref name="keyVisible"/> (layer, query position, KV head, key position), when given, narrows the
    /// causal mask: the dense model with the page choices of sparse attention written out as a mask.</summary>
    public double[][] Forward(ReadOnlySpan<int> tokens, Func<int, int, int, int, bool>? keyVisible = null)
    {
        LlamaConfig c = Config;
        int n = tokens.Length;
        int kvWidth = c.KvHeads * c.HeadDim;
        var x = new double[n][];
        var keys = new double[n][];
        var values = new double[n][];
        for (int t = 0; t < n; t++)
        {
            x[t] = new double[c.Dim];
            Embed(tokens[t], x[t]);
            keys[t] = new double[kvWidth];
            values[t] = new double[kvWidth];
        }
        var q = new double[n][];
        var attention = new double[c.QHeads * c.HeadDim];
        for (int l = 0; l < c.Layers; l++)
        {
            for (int t = 0; t < n; t++)
            {
                q[t] = new double[c.QHeads * c.HeadDim];
                ProjectQkv(l, x[t], t, q[t], keys[t], values[t]);
            }
            for (int t = 0; t < n; t++)
            {
                int layer = l, position = t;
                Func<int, int, bool>? visible = keyVisible is null ? null : (head, key) => keyVisible(layer, position, head, key);
                Attend(q[t], t + 1, i => keys[i], i => values[i], attention, visible);
                FinishLayer(l, x[t], attention);
            }
        }
        var logits = new double[n][];
        for (int t = 0; t < n; t++)
        {
            logits[t] = new double[c.VocabSize];
            Logits(x[t], logits[t]);
        }
        return logits;
    }

    /// <summary>The residual stream's start: row <paramref name="token"/> of the embedding.</summary>
    public void Embed(int token, Span<double> x)
    {
        if ((uint)token >= (uint)Config.VocabSize)
        {
            throw new ArgumentOutOfRangeException(nameof(token), token, $"token id must be in [0, {Config.VocabSize})");
        }
        CheckLength(x, Config.Dim, nameof(x));
        _embedding.AsSpan(token * Config.Dim, Config.Dim).CopyTo(x);
    }

    /// <summary>Attention input of layer <paramref name="layer"/>: RMSNorm, then q, k, v projections, with RoPE
    /// at <paramref name="position"/> applied to q <c>[QHeads*HeadDim]</c> and k <c>[KvHeads*HeadDim]</c>.</summary>
    public void ProjectQkv(int layer, ReadOnlySpan<double> x, int position, Span<double> q, Span<double> k, Span<double> v)
    {
        LlamaConfig c = Config;
        ReferenceLayer w = Layer(layer);
        CheckLength(q, c.QHeads * c.HeadDim, nameof(q));
        CheckLength(k, c.KvHeads * c.HeadDim, nameof(k));
        CheckLength(v, c.KvHeads * c.HeadDim, nameof(v));
        var normed = new double[c.Dim];
        RmsNorm(x, w.AttnNorm, c.NormEps, normed);
        MatVec(w.Q, normed, q);
        MatVec(w.K, normed, k);
        MatVec(w.V, normed, v);
        for (int h = 0; h < c.QHeads; h++)
        {
            ApplyRope(q.Slice(h * c.HeadDim, c.HeadDim), position);
        }
        for (int h = 0; h < c.KvHeads; h++)
        {
            ApplyRope(k.Slice(h * c.HeadDim, c.HeadDim), position);
        }
    }

    /// <summary>Causal GQA attention of one query row <paramref name="q"/> over the keys at positions
    /// 0 .. <paramref name="visibleKeys"/>-1 (fetched through <paramref name="key"/> and <paramref name="value"/>,
    /// each <c>[KvHeads*HeadDim]</c>), softmax scale 1/sqrt(head_dim); writes <c>[QHeads*HeadDim]</c>.
    /// <paramref name="keyVisible"/> (KV head, key position) narrows what a head sees (sparse heads); a query
    /// head that sees no key outputs zeros, as the native MicroAttention does.</summary>
    public void Attend(ReadOnlySpan<double> q, int visibleKeys, Func<int, double[]> key, Func<int, double[]> value, Span<double> output,
        Func<int, int, bool>? keyVisible = null)
    {
        LlamaConfig c = Config;
        CheckLength(q, c.QHeads * c.HeadDim, nameof(q));
        CheckLength(output, c.QHeads * c.HeadDim, nameof(output));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(visibleKeys);
        double scale = 1.0 / Math.Sqrt(c.HeadDim);
        var keys = new double[visibleKeys][];
        var values = new double[visibleKeys][];
        for (int i = 0; i < visibleKeys; i++)
        {
            keys[i] = key(i);
            values[i] = value(i);
        }
        var scores = new double[visibleKeys];
        for (int h = 0; h < c.QHeads; h++)
        {
            int kvHead = h / c.GroupSize, kvOffset = kvHead * c.HeadDim;
            ReadOnlySpan<double> qh = q.Slice(h * c.HeadDim, c.HeadDim);
            double max = double.NegativeInfinity;
            for (int i = 0; i < visibleKeys; i++)
            {
                scores[i] = keyVisible is null || keyVisible(kvHead, i)
                    ? scale * Dot(qh, keys[i].AsSpan(kvOffset, c.HeadDim))
                    : double.NegativeInfinity;
                max = Math.Max(max, scores[i]);
            }
            Span<double> oh = output.Slice(h * c.HeadDim, c.HeadDim);
            oh.Clear();
            if (double.IsNegativeInfinity(max))
            {
                continue;
            }
            double sum = 0;
            for (int i = 0; i < visibleKeys; i++)
            {
                scores[i] = Math.Exp(scores[i] - max);
                sum += scores[i];
            }
            for (int i = 0; i < visibleKeys; i++)
            {
                double p = scores[i] / sum;
                for (int d = 0; d < c.HeadDim; d++)
                {
                    oh[d] += p * values[i][kvOffset + d];
                }
            }
        }
    }

    /// <summary>The rest of layer <paramref name="layer"/> on the residual stream <paramref name="x"/>: output
    /// projection of <paramref name="attention"/> plus residual, then RMSNorm and the SwiGLU MLP plus residual.</summary>
    public void FinishLayer(int layer, Span<double> x, ReadOnlySpan<double> attention)
    {
        LlamaConfig c = Config;
        ReferenceLayer w = Layer(layer);
        CheckLength(x, c.Dim, nameof(x));
        CheckLength(attention, c.QHeads * c.HeadDim, nameof(attention));
        var projected = new double[c.Dim];
        MatVec(w.O, attention, projected);
        for (int i = 0; i < c.Dim; i++)
        {
            x[i] += projected[i];
        }
        var normed = new double[c.Dim];
        RmsNorm(x, w.FfnNorm, c.NormEps, normed);
        var gate = new double[c.FfnDim];
        var up = new double[c.FfnDim];
        MatVec(w.Gate, normed, gate);
        MatVec(w.Up, normed, up);
        for (int i = 0; i < c.FfnDim; i++)
        {
            gate[i] = gate[i] / (1 + Math.Exp(-gate[i])) * up[i];
        }
        MatVec(w.Down, gate, projected);
        for (int i = 0; i < c.Dim; i++)
        {
            x[i] += projected[i];
        }
    }

    /// <summary>Final RMSNorm and the LM head: <paramref name="logits"/> gets <c>[VocabSize]</c>.</summary>
    public void Logits(ReadOnlySpan<double> x, Span<double> logits)
    {
        CheckLength(x, Config.Dim, nameof(x));
        CheckLength(logits, Config.VocabSize, nameof(logits));
        var normed = new double[Config.Dim];
        RmsNorm(x, _outputNorm, Config.NormEps, normed);
        MatVec(_lmHead, normed, logits);
    }

    /// <summary>Rotates one head's elements in place for <paramref name="position"/> (pairs by the config's style).</summary>
    public void ApplyRope(Span<double> head, int position)
    {
        CheckLength(head, Config.HeadDim, nameof(head));
        int half = Config.HeadDim / 2;
        double scaledPosition = Config.RopeScaling.Kind == RopeScalingKind.Linear
            ? position / (double)Config.RopeScaling.Factor
            : position;
        for (int i = 0; i < half; i++)
        {
            double angle = scaledPosition * _inverseFrequencies[i];
            double cos = Math.Cos(angle), sin = Math.Sin(angle);
            (int a, int b) = Config.RopeStyle == RopeStyle.Interleaved ? (2 * i, 2 * i + 1) : (i, i + half);
            double x0 = head[a], x1 = head[b];
            head[a] = x0 * cos - x1 * sin;
            head[b] = x0 * sin + x1 * cos;
        }
    }

    /// <summary>theta^(-2i/d) per pair, with Llama 3.1's piecewise rule applied when the config asks for it.</summary>
    internal static double[] InverseFrequencies(LlamaConfig c)
    {
        int half = c.HeadDim / 2;
        var result = new double[half];
        RopeScaling s = c.RopeScaling;
        for (int i = 0; i < half; i++)
        {
            double f = Math.Pow(c.RopeTheta, -2.0 * i / c.HeadDim);
            if (s.Kind == RopeScalingKind.Llama3)
            {
                double wavelength = 2 * Math.PI / f;
                double highLimit = s.OriginalContext / (double)s.HighFreqFactor;
                double lowLimit = s.OriginalContext / (double)s.LowFreqFactor;
                if (wavelength > lowLimit)
                {
                    f /= s.Factor;
                }
                else if (wavelength >= highLimit)
                {
                    double smooth = (s.OriginalContext / wavelength - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor);
                    f = (1 - smooth) * f / s.Factor + smooth * f;
                }
            }
            result[i] = f;
        }
        return result;
    }

    /// <summary>x * w / sqrt(mean(x^2) + eps).</summary>
    public static void RmsNorm(ReadOnlySpan<double> x, ReadOnlySpan<double> weight, double eps, Span<double> y)
    {
        double sumSquares = 0;
        foreach (double value in x)
        {
            sumSquares += value * value;
        }
        double inverse = 1.0 / Math.Sqrt(sumSquares / x.Length + eps);
        for (int i = 0; i < x.Length; i++)
        {
            y[i] = x[i] * weight[i] * inverse;
        }
    }

    /// <summary>y = W x with W row-major <c>[y.Length][x.Length]</c>.</summary>
    public static void MatVec(ReadOnlySpan<double> w, ReadOnlySpan<double> x, Span<double> y)
    {
        if (w.Length != (long)x.Length * y.Length)
        {
            throw new ArgumentException($"matrix has {w.Length} elements, expected {y.Length} x {x.Length}", nameof(w));
        }
        for (int r = 0; r < y.Length; r++)
        {
            y[r] = Dot(w.Slice(r * x.Length, x.Length), x);
        }
    }

    private static double Dot(ReadOnlySpan<double> a, ReadOnlySpan<double> b)
    {
        double sum = 0;
        for (int i = 0; i < a.Length; i++)
        {
            sum += a[i] * b[i];
        }
        return sum;
    }

    private ReferenceLayer Layer(int layer) =>
        (uint)layer < (uint)_layers.Length
            ? _layers[layer]
            : throw new ArgumentOutOfRangeException(nameof(layer), layer, $"layer must be in [0, {_layers.Length})");

    private static void CheckLength(ReadOnlySpan<double> span, int expected, string name)
    {
        if (span.Length != expected)
        {
            throw new ArgumentException($"{name} has {span.Length} elements, expected {expected}", name);
        }
    }

    private static void ValidateConfig(LlamaConfig c)
    {
        if (c.VocabSize <= 0 || c.Dim <= 0 || c.Layers <= 0 || c.QHeads <= 0 || c.KvHeads <= 0 || c.HeadDim <= 0 || c.FfnDim <= 0)
        {
            throw new ArgumentException($"every size of the config must be positive: {c}", nameof(c));
        }
        if (c.QHeads % c.KvHeads != 0)
        {
            throw new ArgumentException($"q heads ({c.QHeads}) must be a multiple of kv heads ({c.KvHeads})", nameof(c));
        }
        if (c.HeadDim % 2 != 0)
        {
            throw new ArgumentException($"head dim ({c.HeadDim}) must be even for RoPE", nameof(c));
        }
        if (c.RopeScaling.Kind != RopeScalingKind.None && c.RopeScaling.Factor <= 0)
        {
            throw new ArgumentException($"RoPE scaling factor must be positive, got {c.RopeScaling.Factor}", nameof(c));
        }
        if (c.RopeScaling.Kind == RopeScalingKind.Llama3 && c.RopeScaling.HighFreqFactor <= c.RopeScaling.LowFreqFactor)
        {
            throw new ArgumentException("Llama3 RoPE scaling needs HighFreqFactor > LowFreqFactor", nameof(c));
        }
    }

    private static double[] Read(IWeightSource weights, Dictionary<string, TensorInfo> byName, string name, params long[] shape)
    {
        if (!byName.TryGetValue(name, out TensorInfo? info))
        {
            throw new ArgumentException($"the weight source has no tensor {name}", nameof(weights));
        }
        if (!info.Shape.AsSpan().SequenceEqual(shape))
        {
            throw new ArgumentException($"tensor {name} has shape [{string.Join(", ", info.Shape)}], expected [{string.Join(", ", shape)}]", nameof(weights));
        }
        float[] values = weights.ReadFloats(name);
        if (values.Length != info.ElementCount)
        {
            throw new ArgumentException($"tensor {name} read {values.Length} values, expected {info.ElementCount}", nameof(weights));
        }
        return Array.ConvertAll(values, v => (double)v);
    }
}
