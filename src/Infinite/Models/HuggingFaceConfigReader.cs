using System.Text.Json;

namespace Infinite.Models;

/// <summary>Builds a <see cref="LlamaConfig"/> from a Hugging Face <c>config.json</c> (Llama and Mistral).
/// Mistral's <c>sliding_window</c> is not part of <see cref="LlamaConfig"/> and is ignored: such a model runs
/// with full attention, which matches it up to the window length.</summary>
internal static class HuggingFaceConfigReader
{
    public static LlamaConfig Read(string path)
    {
        string text;
        try { text = File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw ModelFormatException.In(path, $"cannot read: {e.Message}");
        }
        JsonDocument doc;
        try { doc = JsonDocument.Parse(text); }
        catch (JsonException e) { throw ModelFormatException.In(path, $"invalid JSON: {e.Message}"); }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw ModelFormatException.In(path, "the top level is not a JSON object");
            CheckArchitecture(root, path);
            int dim = Int(root, "hidden_size", path);
            int heads = Int(root, "num_attention_heads", path);
            var scaling = RopeScalingOf(root, path);
            bool tied = root.TryGetProperty("tie_word_embeddings", out var tie) && tie.ValueKind != JsonValueKind.Null
                ? tie.ValueKind switch
                {
                    JsonValueKind.True => true,
                    JsonValueKind.False => false,
                    _ => throw ModelFormatException.In(path, $"'tie_word_embeddings' should be true or false, got {tie.GetRawText()}"),
                }
                : false;
            var config = new LlamaConfig(
                VocabSize: Int(root, "vocab_size", path),
                Dim: dim,
                Layers: Int(root, "num_hidden_layers", path),
                QHeads: heads,
                KvHeads: OptionalInt(root, "num_key_value_heads", path) ?? heads,
                HeadDim: OptionalInt(root, "head_dim", path) ?? (dim % heads == 0 ? dim / heads
                    : throw ModelFormatException.In(path, $"hidden_size {dim} is not a multiple of num_attention_heads {heads} and no head_dim is given")),
                FfnDim: Int(root, "intermediate_size", path),
                NormEps: OptionalFloat(root, "rms_norm_eps", path) ?? 1e-6f,
                RopeTheta: OptionalFloat(root, "rope_theta", path) ?? 10000f,
                RopeStyle: RopeStyle.Half,
                RopeScaling: scaling,
                TiedEmbeddings: tied,
                ContextLength: Int(root, "max_position_embeddings", path));
            return ConfigValidator.Validate(config, path);
        }
    }

    private static void CheckArchitecture(JsonElement root, string path)
    {
        string[] known = ["LlamaForCausalLM", "MistralForCausalLM"];
        if (root.TryGetProperty("architectures", out var archs) && archs.ValueKind == JsonValueKind.Array)
        {
            var names = archs.EnumerateArray().Select(a => a.ValueKind == JsonValueKind.String ? a.GetString()! : a.GetRawText()).ToList();
            if (!names.Any(known.Contains))
                throw ModelFormatException.In(path, $"architectures [{string.Join(", ", names)}] is not supported ({string.Join(" and ", known)} are)");
            return;
        }
        string? type = root.TryGetProperty("model_type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
        if (type is not ("llama" or "mistral"))
            throw ModelFormatException.In(path, $"neither 'architectures' nor a 'model_type' of llama or mistral is given (model_type: {type ?? "missing"})");
    }

    private static RopeScaling RopeScalingOf(JsonElement root, string path)
    {
        if (!root.TryGetProperty("rope_scaling", out var s) || s.ValueKind == JsonValueKind.Null) return RopeScaling.None;
        if (s.ValueKind != JsonValueKind.Object) throw ModelFormatException.In(path, $"'rope_scaling' should be an object, got {s.GetRawText()}");
        string? kind = (s.TryGetProperty("rope_type", out var k) || s.TryGetProperty("type", out k)) && k.ValueKind == JsonValueKind.String ? k.GetString() : null;
        return kind switch
        {
            "linear" => new RopeScaling(RopeScalingKind.Linear, Float(s, "factor", path, "rope_scaling.")),
            "llama3" => new RopeScaling(RopeScalingKind.Llama3,
                Float(s, "factor", path, "rope_scaling."),
                OptionalFloat(s, "low_freq_factor", path, "rope_scaling.") ?? 1f,
                OptionalFloat(s, "high_freq_factor", path, "rope_scaling.") ?? 4f,
                OptionalInt(s, "original_max_position_embeddings", path, "rope_scaling.") ?? 8192),
            "default" => RopeScaling.None,
            _ => throw ModelFormatException.In(path, $"rope_scaling type '{kind ?? "missing"}' is not supported (linear and llama3 are)"),
        };
    }

    private static int Int(JsonElement o, string key, string path, string prefix = "") =>
        OptionalInt(o, key, path, prefix) ?? throw ModelFormatException.In(path, $"required key '{prefix}{key}' is missing");

    private static int? OptionalInt(JsonElement o, string key, string path, string prefix = "")
    {
        if (!o.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i) && i > 0) return i;
        throw ModelFormatException.In(path, $"'{prefix}{key}' should be a positive integer, got {v.GetRawText()}");
    }

    private static float Float(JsonElement o, string key, string path, string prefix = "") =>
        OptionalFloat(o, key, path, prefix) ?? throw ModelFormatException.In(path, $"required key '{prefix}{key}' is missing");

    private static float? OptionalFloat(JsonElement o, string key, string path, string prefix = "")
    {
        if (!o.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out double d) && double.IsFinite(d)) return (float)d;
        throw ModelFormatException.In(path, $"'{prefix}{key}' should be a number, got {v.GetRawText()}");
    }
}
