using System.Text.RegularExpressions;

namespace Infinite.Models;

/// <summary>GGUF tensor names of a Llama model and the mapping from Hugging Face checkpoint names.</summary>
public static partial class TensorNames
{
    public const string TokenEmbedding = "token_embd.weight";
    public const string OutputNorm = "output_norm.weight";
    public const string Output = "output.weight";

    public static string AttnNorm(int layer) => $"blk.{layer}.attn_norm.weight";
    public static string AttnQ(int layer) => $"blk.{layer}.attn_q.weight";
    public static string AttnK(int layer) => $"blk.{layer}.attn_k.weight";
    public static string AttnV(int layer) => $"blk.{layer}.attn_v.weight";
    public static string AttnOutput(int layer) => $"blk.{layer}.attn_output.weight";
    public static string FfnNorm(int layer) => $"blk.{layer}.ffn_norm.weight";
    public static string FfnGate(int layer) => $"blk.{layer}.ffn_gate.weight";
    public static string FfnUp(int layer) => $"blk.{layer}.ffn_up.weight";
    public static string FfnDown(int layer) => $"blk.{layer}.ffn_down.weight";

    private static readonly Dictionary<string, string> LayerParts = new(StringComparer.Ordinal)
    {
        ["input_layernorm"] = "attn_norm",
        ["self_attn.q_proj"] = "attn_q",
        ["self_attn.k_proj"] = "attn_k",
        ["self_attn.v_proj"] = "attn_v",
        ["self_attn.o_proj"] = "attn_output",
        ["post_attention_layernorm"] = "ffn_norm",
        ["mlp.gate_proj"] = "ffn_gate",
        ["mlp.up_proj"] = "ffn_up",
        ["mlp.down_proj"] = "ffn_down",
    };

    [GeneratedRegex(@"^model\.layers\.(\d{1,6})\.(.+)\.weight$")]
    private static partial Regex HfLayerName();

    /// <summary>The GGUF name of a Hugging Face tensor, or null for tensors Infinite does not use
    /// (rotary_emb.inv_freq, biases of other architectures).</summary>
    public static string? FromHuggingFace(string name)
    {
        switch (name)
        {
            case "model.embed_tokens.weight": return TokenEmbedding;
            case "model.norm.weight": return OutputNorm;
            case "lm_head.weight": return Output;
        }
        var m = HfLayerName().Match(name);
        return m.Success && LayerParts.TryGetValue(m.Groups[2].Value, out var part) ? $"blk.{int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)}.{part}.weight" : null;
    }

    /// <summary>The Hugging Face name of a GGUF tensor name (inverse of <see cref="FromHuggingFace"/>).</summary>
    public static string ToHuggingFace(string ggufName)
    {
        switch (ggufName)
        {
            case TokenEmbedding: return "model.embed_tokens.weight";
            case OutputNorm: return "model.norm.weight";
            case Output: return "lm_head.weight";
        }
        string[] parts = ggufName.Split('.');
        if (parts.Length == 4 && parts[0] == "blk" && parts[3] == "weight")
            foreach (var (hf, gguf) in LayerParts)
                if (gguf == parts[2]) return $"model.layers.{parts[1]}.{hf}.weight";
        throw new ArgumentException($"'{ggufName}' is not a Llama tensor name", nameof(ggufName));
    }

    /// <summary>Every tensor a model of <paramref name="c"/> needs, with its shape (outermost first).</summary>
    public static IEnumerable<(string Name, long[] Shape)> Expected(LlamaConfig c)
    {
        long q = (long)c.QHeads * c.HeadDim, kv = (long)c.KvHeads * c.HeadDim;
        yield return (TokenEmbedding, [c.VocabSize, c.Dim]);
        for (int l = 0; l < c.Layers; l++)
        {
            yield return (AttnNorm(l), [c.Dim]);
            yield return (AttnQ(l), [q, c.Dim]);
            yield return (AttnK(l), [kv, c.Dim]);
            yield return (AttnV(l), [kv, c.Dim]);
            yield return (AttnOutput(l), [c.Dim, q]);
            yield return (FfnNorm(l), [c.Dim]);
            yield return (FfnGate(l), [c.FfnDim, c.Dim]);
            yield return (FfnUp(l), [c.FfnDim, c.Dim]);
            yield return (FfnDown(l), [c.Dim, c.FfnDim]);
        }
        yield return (OutputNorm, [c.Dim]);
        if (!c.TiedEmbeddings) yield return (Output, [c.VocabSize, c.Dim]);
    }

    /// <summary>Checks that every tensor the config needs is present with the expected shape.</summary>
    internal static void CheckAgainst(LlamaConfig c, IReadOnlyDictionary<string, TensorInfo> tensors, string path, Func<string, string> describe)
    {
        foreach (var (name, shape) in Expected(c))
        {
            if (!tensors.TryGetValue(name, out var t))
                throw ModelFormatException.In(path, $"tensor {describe(name)} is missing (the config needs it)");
            if (!t.Shape.SequenceEqual(shape))
                throw ModelFormatException.In(path, $"tensor {describe(name)} has shape [{string.Join(", ", t.Shape)}], expected [{string.Join(", ", shape)}] from the config");
        }
    }
}
