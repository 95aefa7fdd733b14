using System.Text.Json;
using System.Text.RegularExpressions;

namespace Infinite.Tokenization;

/// <summary>
/// The pre-tokenizer and normalizer steps of a <c>tokenizer.json</c>, checked against what this engine reproduces
/// exactly; anything else is refused by name rather than tokenized differently from the model's training.
/// </summary>
internal static class HuggingFacePipeline
{
    /// <summary>The Pre value for a byte-level file: "gpt2" for a plain ByteLevel, "regex:..." for Split + ByteLevel.</summary>
    public static string ReadByteLevelPre(JsonFile file)
    {
        if (!file.Root.TryGetProperty("pre_tokenizer", out var pre) || pre.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"{file.Path}: pre_tokenizer is missing; byte-level BPE needs a ByteLevel pre-tokenizer.");
        var steps = file.String(pre, "pre_tokenizer.type") == "Sequence"
            ? file.Array(pre, "pre_tokenizer.pretokenizers").ToList()
            : [pre];
        string? split = null;
        bool byteLevel = false, byteLevelSplits = false;
        for (int i = 0; i < steps.Count; i++)
        {
            string where = steps.Count == 1 ? "pre_tokenizer" : $"pre_tokenizer.pretokenizers[{i}]";
            string type = file.String(steps[i], where + ".type");
            if (type == "ByteLevel")
            {
                byteLevel = true;
                byteLevelSplits = !(steps[i].TryGetProperty("use_regex", out var ur) && ur.ValueKind == JsonValueKind.False);
                if (steps[i].TryGetProperty("add_prefix_space", out var aps) && aps.ValueKind == JsonValueKind.True)
                    throw new InvalidDataException($"{file.Path}: {where}.add_prefix_space = true is not supported.");
            }
            else if (type == "Split" && split is null && !byteLevel)
            {
                split = ReadSplitPattern(file, steps[i], where);
            }
            else
            {
                throw new InvalidDataException($"{file.Path}: {where}.type '{type}' is not supported here "
                    + "(supported: ByteLevel, or Sequence[Split(regex), ByteLevel]).");
            }
        }
        if (!byteLevel) throw new InvalidDataException($"{file.Path}: pre_tokenizer has no ByteLevel step.");
        if (split is not null && byteLevelSplits)
            throw new InvalidDataException($"{file.Path}: pre_tokenizer splits twice (Split and ByteLevel.use_regex); not supported.");
        return split is not null ? "regex:" + split : byteLevelSplits ? "gpt2" : @"regex:[\s\S]+";
    }

    private static string ReadSplitPattern(JsonFile file, JsonElement split, string where)
    {
        string behavior = split.TryGetProperty("behavior", out var b) && b.ValueKind == JsonValueKind.String ? b.GetString()! : "Isolated";
        bool invert = split.TryGetProperty("invert", out var inv) && inv.ValueKind == JsonValueKind.True;
        if (behavior != "Isolated" || invert)
            throw new InvalidDataException($"{file.Path}: {where}.behavior '{behavior}' (invert={invert}) is not supported (only Isolated).");
        var pattern = file.Object(split, where + ".pattern");
        if (pattern.TryGetProperty("Regex", out var regex) && regex.ValueKind == JsonValueKind.String) return regex.GetString()!;
        if (pattern.TryGetProperty("String", out var literal) && literal.ValueKind == JsonValueKind.String)
            return Regex.Escape(literal.GetString()!);
        throw new InvalidDataException($"{file.Path}: {where}.pattern has neither a \"Regex\" nor a \"String\".");
    }

    /// <summary>Accepts the Llama 2 layouts (Prepend/Replace normalizer or Metaspace pre-tokenizer) whose behaviour
    /// the SentencePiece model reproduces.</summary>
    public static string? CheckSentencePieceLayout(JsonFile file)
    {
        if (file.Root.TryGetProperty("pre_tokenizer", out var pre) && pre.ValueKind == JsonValueKind.Object)
        {
            string type = file.String(pre, "pre_tokenizer.type");
            if (type != "Metaspace")
                throw new InvalidDataException($"{file.Path}: pre_tokenizer.type '{type}' with byte_fallback is not supported (only Metaspace or none).");
        }
        if (file.Root.TryGetProperty("normalizer", out var norm) && norm.ValueKind == JsonValueKind.Object)
        {
            var steps = file.String(norm, "normalizer.type") == "Sequence" ? file.Array(norm, "normalizer.normalizers").ToList() : [norm];
            foreach (var step in steps)
            {
                string type = file.String(step, "normalizer.type");
                if (type is not ("Prepend" or "Replace"))
                    throw new InvalidDataException($"{file.Path}: normalizer '{type}' with byte_fallback is not supported (only Prepend/Replace).");
            }
        }
        return null;
    }

    // NFC (Qwen 2) is accepted without being applied: text arriving over HTTP is almost always NFC already, and
    // TokenizerData has no place to carry a normalizer. Any other normalizer changes ids, so it is refused.
    public static void CheckByteLevelNormalizer(JsonFile file)
    {
        if (!file.Root.TryGetProperty("normalizer", out var norm) || norm.ValueKind == JsonValueKind.Null) return;
        if (norm.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{file.Path}: normalizer is not an object.");
        string type = file.String(norm, "normalizer.type");
        if (type != "NFC")
            throw new InvalidDataException($"{file.Path}: normalizer.type '{type}' is not supported for byte-level BPE (only none or NFC).");
    }
}
