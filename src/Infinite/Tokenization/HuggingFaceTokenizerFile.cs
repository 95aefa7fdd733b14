using System.Text.Json;

namespace Infinite.Tokenization;

/// <summary>
/// Reads a Hugging Face model folder's <c>tokenizer.json</c> (BPE model), <c>tokenizer_config.json</c> (BOS/EOS,
/// chat template) and, when present, <c>generation_config.json</c> (extra EOS ids) into <see cref="TokenizerData"/>.
/// Byte-level BPE needs a ByteLevel pre-tokenizer, optionally after one Split(regex); a BPE with
/// <c>byte_fallback</c> is read as SentencePiece-style (Llama 2 layout). Anything else is refused by name rather
/// than tokenized differently from the model's training.
/// </summary>
public static class HuggingFaceTokenizerFile
{
    private const string TokenizerJson = "tokenizer.json";
    private const string ConfigJson = "tokenizer_config.json";
    private const string GenerationJson = "generation_config.json";

    public static TokenizerData Read(string folder)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"Model folder '{folder}' does not exist.");
        string tokenizerPath = Path.Combine(folder, TokenizerJson);
        string configPath = Path.Combine(folder, ConfigJson);
        using var tokenizer = Load(tokenizerPath, required: true)!;
        using var config = Load(configPath, required: true)!;
        using var generation = Load(Path.Combine(folder, GenerationJson), required: false);
        var file = new JsonFile(tokenizerPath, tokenizer.RootElement);
        var cfg = new JsonFile(configPath, config.RootElement);

        var model = file.Object(file.Root, "model");
        string type = file.String(model, "model.type");
        if (type != "BPE")
            throw new InvalidDataException($"{tokenizerPath}: model.type '{type}' is not supported (only BPE).");
        bool byteFallback = model.TryGetProperty("byte_fallback", out var bf) && bf.ValueKind == JsonValueKind.True;
        bool ignoreMerges = model.TryGetProperty("ignore_merges", out var im) && im.ValueKind == JsonValueKind.True;

        var (tokens, types) = ReadVocabulary(file, model);
        var merges = ReadMerges(file, model);
        var kind = byteFallback ? TokenizerKind.SentencePiece : TokenizerKind.ByteLevelBpe;
        string? pre = byteFallback ? HuggingFacePipeline.CheckSentencePieceLayout(file) : HuggingFacePipeline.ReadByteLevelPre(file);
        if (!byteFallback) HuggingFacePipeline.CheckByteLevelNormalizer(file);

        int? unknownId = null;
        if (model.TryGetProperty("unk_token", out var unk) && unk.ValueKind == JsonValueKind.String)
        {
            string unkText = unk.GetString()!;
            int u = HuggingFaceConfig.IndexOf(tokens, unkText)
                ?? throw new InvalidDataException($"{tokenizerPath}: model.unk_token \"{unkText}\" is not a token of the vocabulary.");
            unknownId = u;
            if (types[u] == TokenType.Normal) types[u] = TokenType.Unknown;
        }
        if (byteFallback)
            for (int id = 0; id < tokens.Length; id++)
                if (types[id] == TokenType.Normal && TokenVocabulary.TryParseByteToken(tokens[id], out _)) types[id] = TokenType.Byte;

        int bos = HuggingFaceConfig.SpecialId(cfg, tokens, "bos_token");
        int eos = HuggingFaceConfig.SpecialId(cfg, tokens, "eos_token");
        bool addBos = cfg.OptionalBool("add_bos_token") ?? PostProcessorAdds(file.Root, bos >= 0 ? tokens[bos] : null, first: true);
        bool addEos = cfg.OptionalBool("add_eos_token") ?? PostProcessorAdds(file.Root, eos >= 0 ? tokens[eos] : null, first: false);

        // A pad token is optional: configs sometimes name one the vocabulary lacks, and nothing here needs it.
        int pad = HuggingFaceConfig.SpecialIdOrMissing(cfg, tokens, "pad_token");
        return new TokenizerData(kind, tokens, Scores: null, types, merges, bos, eos, unknownId, pad >= 0 ? pad : null,
            addBos, addEos, pre, HuggingFaceConfig.ReadChatTemplate(cfg),
            generation is null ? null : HuggingFaceConfig.ReadGenerationEos(new JsonFile(Path.Combine(folder, GenerationJson), generation.RootElement), tokens.Length),
            ignoreMerges);
    }

    private static JsonDocument? Load(string path, bool required)
    {
        if (!File.Exists(path))
        {
            if (required) throw new FileNotFoundException($"Tokenizer file '{path}' is missing.", path);
            return null;
        }
        try
        {
            var doc = JsonDocument.Parse(File.ReadAllText(path), new JsonDocumentOptions { AllowTrailingCommas = true });
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"{path}: the top level is {doc.RootElement.ValueKind}, not a JSON object.");
            return doc;
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not valid JSON ({e.Message}).", e);
        }
    }

    private static (string[] Tokens, TokenType[] Types) ReadVocabulary(JsonFile file, JsonElement model)
    {
        var vocab = file.Object(model, "model.vocab");
        var byId = new SortedDictionary<int, (string Text, TokenType Type)>();
        foreach (var entry in vocab.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.Number || !entry.Value.TryGetInt32(out int id) || id < 0)
                throw new InvalidDataException($"{file.Path}: model.vocab[\"{entry.Name}\"] is not a non-negative integer id.");
            if (!byId.TryAdd(id, (entry.Name, TokenType.Normal)))
                throw new InvalidDataException($"{file.Path}: model.vocab gives id {id} to both \"{byId[id].Text}\" and \"{entry.Name}\".");
        }
        if (file.Root.TryGetProperty("added_tokens", out var added) && added.ValueKind != JsonValueKind.Null)
        {
            if (added.ValueKind != JsonValueKind.Array) throw new InvalidDataException($"{file.Path}: added_tokens is not an array.");
            int i = 0;
            foreach (var token in added.EnumerateArray())
            {
                string where = $"added_tokens[{i++}]";
                if (token.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{file.Path}: {where} is not an object.");
                int id = file.Int(token, where + ".id");
                string content = file.String(token, where + ".content");
                bool special = token.TryGetProperty("special", out var s) && s.ValueKind == JsonValueKind.True;
                if (id < 0) throw new InvalidDataException($"{file.Path}: {where}.id is negative.");
                if (byId.TryGetValue(id, out var existing) && existing.Text != content)
                    throw new InvalidDataException($"{file.Path}: {where} gives id {id} to \"{content}\" but model.vocab has \"{existing.Text}\".");
                byId[id] = (content, special ? TokenType.Control : TokenType.UserDefined);
            }
        }
        if (byId.Count == 0) throw new InvalidDataException($"{file.Path}: model.vocab is empty.");
        int n = byId.Keys.Max() + 1;
        var tokens = new string[n];
        var types = new TokenType[n];
        for (int id = 0; id < n; id++)
        {
            // Gaps get a placeholder that neither side of the tokenizer will ever use.
            (tokens[id], types[id]) = byId.TryGetValue(id, out var t) ? t : ($"<unused_{id}>", TokenType.Unused);
        }
        return (tokens, types);
    }

    private static string[] ReadMerges(JsonFile file, JsonElement model)
    {
        if (!model.TryGetProperty("merges", out var merges) || merges.ValueKind == JsonValueKind.Null) return [];
        if (merges.ValueKind != JsonValueKind.Array) throw new InvalidDataException($"{file.Path}: model.merges is not an array.");
        var result = new List<string>(merges.GetArrayLength());
        int i = 0;
        foreach (var merge in merges.EnumerateArray())
        {
            string where = $"model.merges[{i++}]";
            if (merge.ValueKind == JsonValueKind.String)
            {
                string text = merge.GetString()!;
                int space = text.IndexOf(' ', StringComparison.Ordinal);
                if (space <= 0 || space == text.Length - 1 || text.IndexOf(' ', space + 1) >= 0)
                    throw new InvalidDataException($"{file.Path}: {where} \"{text}\" is not of the form \"left right\".");
                result.Add(text);
            }
            else if (merge.ValueKind == JsonValueKind.Array && merge.GetArrayLength() == 2
                     && merge[0].ValueKind == JsonValueKind.String && merge[1].ValueKind == JsonValueKind.String
                     && merge[0].GetString()!.Length > 0 && merge[1].GetString()!.Length > 0)
            {
                // TokenizerData keeps merges as "left right": a piece with a literal space cannot be represented
                // (byte-level and SentencePiece vocabularies spell spaces as Ġ / ▁, so real files have none).
                string left = merge[0].GetString()!, right = merge[1].GetString()!;
                if (left.Contains(' ', StringComparison.Ordinal) || right.Contains(' ', StringComparison.Ordinal))
                    throw new InvalidDataException($"{file.Path}: {where} has a piece containing a space, which is not supported.");
                result.Add(left + " " + right);
            }
            else
            {
                throw new InvalidDataException($"{file.Path}: {where} is neither \"left right\" nor [\"left\", \"right\"].");
            }
        }
        return result.ToArray();
    }

    // Llama 3 style files have no add_bos_token; the TemplateProcessing post-processor prepends BOS instead.
    private static bool PostProcessorAdds(JsonElement root, string? token, bool first)
    {
        if (token is null || !root.TryGetProperty("post_processor", out var pp) || pp.ValueKind != JsonValueKind.Object) return false;
        var candidates = pp.TryGetProperty("processors", out var list) && list.ValueKind == JsonValueKind.Array
            ? list.EnumerateArray().ToList() : [pp];
        foreach (var p in candidates)
        {
            if (!p.TryGetProperty("single", out var single) || single.ValueKind != JsonValueKind.Array || single.GetArrayLength() == 0) continue;
            var item = first ? single[0] : single[single.GetArrayLength() - 1];
            if (item.TryGetProperty("SpecialToken", out var st) && st.TryGetProperty("id", out var id)
                && id.ValueKind == JsonValueKind.String && id.GetString() == token) return true;
        }
        return false;
    }
}
