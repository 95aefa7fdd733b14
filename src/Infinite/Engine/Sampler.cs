using System.Numerics;
using System.Runtime.InteropServices;

namespace Infinite.Engine;

/// <summary>
/// Draws one request's tokens from logits. Keeps what its penalties need (tokens seen, output counts) and its own
/// random generator, so a seeded request reproduces its output whatever else runs in the batch.
/// </summary>
public sealed class Sampler
{
    private readonly SamplingOptions _options;
    private readonly Random _random;
    private readonly HashSet<int> _seen = [];
    private readonly Dictionary<int, int> _outputCounts = [];
    private Candidate[] _candidates = [];
    private double[] _weights = [];

    public Sampler(SamplingOptions options, IEnumerable<int> prompt)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(prompt);
        options.Validate();
        _options = options;
        _random = options.Seed is int seed ? new Random(seed) : new Random();
        _seen.UnionWith(prompt);
    }

    /// <summary>Records a generated token for the penalties of later draws.</summary>
    public void Accept(int token)
    {
        _seen.Add(token);
        _outputCounts[token] = _outputCounts.GetValueOrDefault(token) + 1;
    }

    /// <summary>Picks the next token; <paramref name="logits"/> is modified (penalties, temperature).</summary>
    public int Sample(Span<float> logits)
    {
        ApplyPenalties(logits);
        if (_options.Temperature == 0f)
            return ArgMax(logits);
        return SampleWithTemperature(logits);
    }

    /// <summary>Applies this request's repetition, frequency and presence penalties.</summary>
    internal void ApplyPenalties(Span<float> logits)
    {
        if (_options.RepetitionPenalty != 1f)
            ApplyRepetitionPenalty(logits, _seen, _options.RepetitionPenalty);
        if (_options.FrequencyPenalty != 0f || _options.PresencePenalty != 0f)
            ApplyFrequencyPresencePenalties(logits, _outputCounts, _options.FrequencyPenalty, _options.PresencePenalty);
    }

    /// <summary>CTRL / Hugging Face: logits of <paramref name="tokens"/> shrink toward (positive) or away from
    /// (negative) zero by <paramref name="penalty"/>.</summary>
    public static void ApplyRepetitionPenalty(Span<float> logits, IEnumerable<int> tokens, float penalty)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        foreach (int t in tokens)
        {
            if ((uint)t >= (uint)logits.Length)
                continue;
            float l = logits[t];
            logits[t] = l > 0f ? l / penalty : l * penalty;
        }
    }

    /// <summary>OpenAI: <c>logit -= count * frequency + (count &gt; 0) * presence</c> over output tokens.</summary>
    public static void ApplyFrequencyPresencePenalties(
        Span<float> logits, IReadOnlyDictionary<int, int> outputCounts, float frequency, float presence)
    {
        ArgumentNullException.ThrowIfNull(outputCounts);
        foreach ((int t, int count) in outputCounts)
        {
            if ((uint)t < (uint)logits.Length && count > 0)
                logits[t] -= count * frequency + presence;
        }
    }

    /// <summary>Index of the largest logit (the first one on ties).</summary>
    public static int ArgMax(ReadOnlySpan<float> logits)
    {
        if (logits.IsEmpty)
            throw new ArgumentException("No logits to sample from.", nameof(logits));
        float max = Max(logits);
        int index = logits.IndexOf(max);
        return index >= 0 ? index : 0; // all NaN: nothing is larger than anything
    }

    internal static float Max(ReadOnlySpan<float> values)
    {
        int i = 0;
        float max = float.NegativeInfinity;
        if (Vector.IsHardwareAccelerated && values.Length >= Vector<float>.Count * 2)
        {
            ReadOnlySpan<Vector<float>> vectors = MemoryMarshal.Cast<float, Vector<float>>(values);
            Vector<float> acc = vectors[0];
            for (int v = 1; v < vectors.Length; v++)
                acc = Vector.Max(acc, vectors[v]);
            for (int k = 0; k < Vector<float>.Count; k++)
                max = MathF.Max(max, acc[k]);
            i = vectors.Length * Vector<float>.Count;
        }
        for (; i < values.Length; i++)
            max = MathF.Max(max, values[i]);
        return max;
    }

    private static void Scale(Span<float> values, float factor)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            Span<Vector<float>> vectors = MemoryMarshal.Cast<float, Vector<float>>(values);
            for (int v = 0; v < vectors.Length; v++)
                vectors[v] *= factor;
            i = vectors.Length * Vector<float>.Count;
        }
        for (; i < values.Length; i++)
            values[i] *= factor;
    }

    private int SampleWithTemperature(Span<float> logits)
    {
        int kept = Filter(logits, out double total);
        if (kept == 0)
            return ArgMax(logits);
        double u = _random.NextDouble() * total;
        double acc = 0;
        for (int i = 0; i < kept; i++)
        {
            acc += _weights[i];
            if (u < acc)
                return _candidates[i].Token;
        }
        return _candidates[kept - 1].Token;
    }

    /// <summary>Tokens left by the last <see cref="Filter"/>, most likely first when top-k or top-p sorted them.</summary>
    internal IEnumerable<int> KeptTokens(int count) => _candidates.Take(count).Select(c => c.Token);

    /// <summary>
    /// Applies temperature, top-k, min-p and top-p. Leaves the survivors in <c>_candidates</c> with their unnormalised
    /// probabilities in <c>_weights</c>; returns how many survive and their total weight.
    /// </summary>
    internal int Filter(Span<float> logits, out double total)
    {
        Scale(logits, 1f / _options.Temperature);
        float max = Max(logits);
        total = 0;
        if (float.IsNegativeInfinity(max) || float.IsNaN(max))
            return 0;

        // min-p relative to the most likely token is a fixed logit threshold, and the most likely token survives
        // top-k, so both filters commute and min-p applies here, before anything is sorted.
        float threshold = _options.MinP > 0f ? max + MathF.Log(_options.MinP) : float.NegativeInfinity;
        if (_candidates.Length < logits.Length)
        {
            _candidates = new Candidate[logits.Length];
            _weights = new double[logits.Length];
        }
        int count = 0;
        float lowest = max;
        for (int i = 0; i < logits.Length; i++)
        {
            float l = logits[i];
            if (l >= threshold && l > float.NegativeInfinity)
            {
                _candidates[count] = new Candidate(i, l);
                _weights[count] = Math.Exp(l - max);
                total += _weights[count];
                lowest = MathF.Min(lowest, l);
                count++;
            }
        }
        bool topK = _options.TopK > 0 && _options.TopK < count;
        bool topP = _options.TopP < 1f;
        if (!topK && !topP)
            return count;

        count = Narrow(count, lowest, max, topK, total);
        Span<Candidate> kept = _candidates.AsSpan(0, count);
        kept.Sort(static (a, b) => a.Logit != b.Logit ? b.Logit.CompareTo(a.Logit) : a.Token.CompareTo(b.Token));
        if (topK)
        {
            count = _options.TopK;
            total = 0; // top-p renormalises over the top-k survivors
            for (int i = 0; i < count; i++)
                total += Math.Exp(kept[i].Logit - max);
        }
        double target = topP ? _options.TopP * total : double.PositiveInfinity;
        double mass = 0;
        int n = 0;
        while (n < count && mass < target)
        {
            _weights[n] = Math.Exp(_candidates[n].Logit - max);
            mass += _weights[n++];
        }
        total = mass;
        return n;
    }

    /// <summary>
    /// Drops candidates that cannot survive top-k / top-p before sorting, so a large vocabulary is not sorted whole:
    /// lowers a logit cut from the maximum until the tokens above it are at least k (top-k) or carry at least p of
    /// the mass (top-p alone). Those are the most likely tokens, so they contain every survivor.
    /// </summary>
    private int Narrow(int count, float lowest, float max, bool topK, double total)
    {
        double needMass = _options.TopP * total;
        for (float drop = 1f; max - drop > lowest; drop *= 2f)
        {
            float cut = max - drop;
            int above = 0;
            double mass = 0;
            for (int i = 0; i < count; i++)
            {
                if (_candidates[i].Logit >= cut)
                {
                    above++;
                    mass += _weights[i];
                }
            }
            if (topK ? above >= _options.TopK : mass >= needMass)
            {
                int m = 0;
                for (int i = 0; i < count; i++)
                {
                    if (_candidates[i].Logit >= cut)
                        _candidates[m++] = _candidates[i];
                }
                return m;
            }
        }
        return count;
    }

    private readonly record struct Candidate(int Token, float Logit);
}
