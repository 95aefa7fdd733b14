using Infinite.Engine;

namespace Infinite.Tests.Engine;

/// <summary>
/// A deterministic stand-in for a language model: the logits of the next token are a function of the whole sequence
/// (every token and its position), so any KV page mix-up in the engine changes the output. The peak is a lowercase
/// letter; every other token gets hash noise in [0, 1) so temperature sampling has something to choose from.
/// </summary>
internal static class FakeModel
{
    public const int Vocab = 258;
    public const float Peak = 4f;

    /// <summary>Forces the next token: returns a token for the sequence so far, or null for the hash model.</summary>
    public delegate int? Script(IReadOnlyList<int> sequence);

    public static void Logits(IReadOnlyList<int> sequence, Span<float> row, Script? script = null)
    {
        ulong h = 1469598103934665603UL;
        for (int i = 0; i < sequence.Count; i++)
            h = Mix(h, (ulong)(uint)sequence[i] * 31UL + (ulong)i);
        for (int v = 0; v < row.Length; v++)
            row[v] = (Mix(h, (ulong)v + 0x9E37UL) >> 40) / (float)(1UL << 24);
        row[ByteTokenizer.Eos] = -10f; // the hash model never ends by itself
        int? forced = script?.Invoke(sequence);
        if (forced is int f)
            row[f] = 30f;
        else
            row['a' + (int)(h % 26)] += Peak;
    }

    /// <summary>What a request generates when it runs alone, without the engine.</summary>
    public static List<int> Reference(IReadOnlyList<int> prompt, int maxTokens, SamplingOptions sampling, Script? script = null)
    {
        var sequence = new List<int>(prompt);
        var sampler = new Sampler(sampling, prompt);
        var row = new float[Vocab];
        var output = new List<int>();
        while (output.Count < maxTokens)
        {
            Logits(sequence, row, script);
            int token = sampler.Sample(row);
            sampler.Accept(token);
            output.Add(token);
            sequence.Add(token);
            if (token == ByteTokenizer.Eos)
                break;
        }
        return output;
    }

    private static ulong Mix(ulong h, ulong v)
    {
        h ^= v;
        h *= 1099511628211UL;
        h ^= h >> 29;
        h *= 0xBF58476D1CE4E5B9UL;
        return h ^ (h >> 32);
    }
}
