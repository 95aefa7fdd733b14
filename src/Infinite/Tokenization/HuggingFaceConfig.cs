using System.Text.Json;

namespace Infinite.Tokenization;

/// <summary>The entries of <c>tokenizer_config.json</c> and <c>generation_config.json</c> a tokenizer needs.</summary>
internal static class HuggingFaceConfig
{
    public static int SpecialId(JsonFile cfg, string[] tokens, string key)
    {
        int id = SpecialIdOrMissing(cfg, tokens, key);
        if (id == -2)
            throw new InvalidDataException($"{cfg.Path}: {key} \"{SpecialText(cfg, key)}\" is not a token of the vocabulary.");
        return id;
    }

    /// <summary>-1 when the key is absent or null, -2 when its token is not in the vocabulary.</summary>
    public static int SpecialIdOrMissing(JsonFile cfg, string[] tokens, string key)
    {
        string? text = SpecialText(cfg, key);
        return text is null ? -1 : IndexOf(tokens, text) ?? -2;
    }

    private static string? SpecialText(JsonFile cfg, string key)
    {
        if (!cfg.Root.TryGetProperty(key, out var value) || value.ValueKind == JsonValueKind.Null) return null;
        string text = value.ValueKind switch
        {
            JsonValueKind.String => value.GetString()!,
            JsonValueKind.Object => cfg.String(value, key + ".content"),
            _ => throw new InvalidDataException($"{cfg.Path}: {key} is neither a string nor an object with \"content\"."),
        };
        return text;
    }

    public static string? ReadChatTemplate(JsonFile cfg)
    {
        if (!cfg.Root.TryGetProperty("chat_template", out var t) || t.ValueKind == JsonValueKind.Null) return null;
        if (t.ValueKind == JsonValueKind.String) return t.GetString();
        if (t.ValueKind != JsonValueKind.Array)
            throw new InvalidDataException($"{cfg.Path}: chat_template is neither a string nor a list of {{name, template}}.");
        int i = 0;
        foreach (var entry in t.EnumerateArray())
        {
            string where = $"chat_template[{i++}]";
            if (entry.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{cfg.Path}: {where} is not an object.");
            if (cfg.String(entry, where + ".name") == "default") return cfg.String(entry, where + ".template");
        }
        throw new InvalidDataException($"{cfg.Path}: chat_template lists no template named \"default\".");
    }

    public static List<int>? ReadGenerationEos(JsonFile gen, int vocabSize)
    {
        if (!gen.Root.TryGetProperty("eos_token_id", out var eos) || eos.ValueKind == JsonValueKind.Null) return null;
        var values = eos.ValueKind == JsonValueKind.Array ? eos.EnumerateArray().ToList() : [eos];
        var ids = new List<int>();
        foreach (var v in values)
        {
            if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out int id) || id < 0 || id >= vocabSize)
                throw new InvalidDataException($"{gen.Path}: eos_token_id {v} is not a token id below {vocabSize}.");
            ids.Add(id);
        }
        return ids;
    }

    public static int? IndexOf(string[] tokens, string text)
    {
        int i = Array.IndexOf(tokens, text);
        return i >= 0 ? i : null;
    }
}
