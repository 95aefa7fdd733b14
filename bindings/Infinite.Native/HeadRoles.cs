using System.Globalization;

namespace Infinite.Native;

/// <summary>What a KV head does under LServe's unified sparse attention.</summary>
public enum HeadRole
{
    /// <summary>Sees every page (dense), or at long context the pages the selector picks.</summary>
    Retrieval,

    /// <summary>Sees only sink and recent tokens (the Λ mask); its cost does not grow with the context.</summary>
    Streaming,
}

/// <summary>
/// The role of every KV head of every layer. From DuoAttention-style gate values (one per layer and
/// KV head; a high value means the head needs full attention) with one global sparsity quantile
/// over all layers and heads, so the number of streaming heads varies by layer; or given directly.
/// </summary>
public sealed class HeadRoles
{
    private readonly HeadRole[,] _roles;

    public HeadRoles(HeadRole[,] roles)
    {
        ArgumentNullException.ThrowIfNull(roles);
        _roles = (HeadRole[,])roles.Clone();
    }

    public int Layers => _roles.GetLength(0);

    public int KvHeads => _roles.GetLength(1);

    public HeadRole this[int layer, int kvHead] => _roles[layer, kvHead];

    /// <summary>Heads that are streaming, over all layers.</summary>
    public int StreamingCount
    {
        get
        {
            int n = 0;
            foreach (HeadRole role in _roles)
            {
                n += role == HeadRole.Streaming ? 1 : 0;
            }
            return n;
        }
    }

    /// <summary>Every head a retrieval head: plain dense attention, the default.</summary>
    public static HeadRoles Dense(int layers, int kvHeads) => new(new HeadRole[layers, kvHeads]);

    /// <summary>The heads whose gate value falls in the lowest <paramref name="sparsity"/> fraction of all
    /// gate values become streaming heads (ties broken by layer, then head, for a stable result).</summary>
    public static HeadRoles FromGateValues(double[,] gates, double sparsity)
    {
        ArgumentNullException.ThrowIfNull(gates);
        if (!(sparsity >= 0 && sparsity <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(sparsity), sparsity, "sparsity is the fraction of heads made streaming: from 0 to 1");
        }
        int layers = gates.GetLength(0), heads = gates.GetLength(1);
        var order = new List<(double Gate, int Layer, int Head)>(layers * heads);
        for (int l = 0; l < layers; l++)
        {
            for (int h = 0; h < heads; h++)
            {
                order.Add((gates[l, h], l, h));
            }
        }
        order.Sort();
        int streaming = (int)Math.Round(sparsity * order.Count, MidpointRounding.AwayFromZero);
        var roles = new HeadRole[layers, heads];
        foreach (var (_, l, h) in order.Take(streaming))
        {
            roles[l, h] = HeadRole.Streaming;
        }
        return new HeadRoles(roles);
    }

    /// <summary>Reads a gate file (DuoAttention's <c>full_attention_heads.tsv</c> form: one line per layer,
    /// one number per KV head, separated by tabs, commas or spaces; '#' starts a comment).</summary>
    /// <exception cref="FormatException">A bad number or a ragged row; the message names the line and column.</exception>
    public static HeadRoles LoadGateFile(string path, double sparsity)
    {
        var rows = new List<double[]>();
        int lineNumber = 0;
        foreach (string raw in File.ReadLines(path))
        {
            lineNumber++;
            string line = raw.Split('#')[0].Trim();
            if (line.Length == 0)
            {
                continue;
            }
            string[] fields = line.Split(['\t', ',', ' '], StringSplitOptions.RemoveEmptyEntries);
            var values = new double[fields.Length];
            for (int i = 0; i < fields.Length; i++)
            {
                if (!double.TryParse(fields[i], NumberStyles.Float, CultureInfo.InvariantCulture, out values[i]) || !double.IsFinite(values[i]))
                {
                    throw new FormatException($"{path}:{lineNumber}: column {i + 1} ('{fields[i]}') is not a number");
                }
            }
            if (rows.Count > 0 && values.Length != rows[0].Length)
            {
                throw new FormatException($"{path}:{lineNumber}: {values.Length} heads, but the first layer has {rows[0].Length}");
            }
            rows.Add(values);
        }
        if (rows.Count == 0)
        {
            throw new FormatException($"{path}: no gate values");
        }
        var gates = new double[rows.Count, rows[0].Length];
        for (int l = 0; l < rows.Count; l++)
        {
            for (int h = 0; h < rows[l].Length; h++)
            {
                gates[l, h] = rows[l][h];
            }
        }
        return FromGateValues(gates, sparsity);
    }

    /// <summary>The layer's flags as inf_attention_batch.streaming_heads takes them, or null when all are retrieval.</summary>
    public int[]? StreamingFlags(int layer)
    {
        var flags = new int[KvHeads];
        bool any = false;
        for (int h = 0; h < KvHeads; h++)
        {
            flags[h] = _roles[layer, h] == HeadRole.Streaming ? 1 : 0;
            any |= flags[h] != 0;
        }
        return any ? flags : null;
    }
}
