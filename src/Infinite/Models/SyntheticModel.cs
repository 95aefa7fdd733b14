namespace Infinite.Models;

/// <summary>
/// Writes complete Llama models with seeded random weights and a small byte-level BPE vocabulary, as a GGUF
/// file or as a Hugging Face folder. Both forms of the same seed describe the same function: the GGUF holds
/// the q/k rows in llama.cpp's interleaved order (<see cref="RopeRowPermutation"/>). Writing is streamed row
/// by row, so models of several GB need no more memory than one row.
/// </summary>
public static class SyntheticModel
{
    /// <summary>The 12M-parameter model of the benchmarks.</summary>
    public static LlamaConfig DemoConfig { get; } = new(
        VocabSize: 512, Dim: 512, Layers: 4, QHeads: 8, KvHeads: 2, HeadDim: 64, FfnDim: 1536,
        NormEps: 1e-5f, RopeTheta: 500000f, RopeStyle: RopeStyle.Interleaved, RopeScaling: RopeScaling.None,
        TiedEmbeddings: false, ContextLength: 131072);

    /// <summary>Writes a llama GGUF v3; 1-D tensors (norms) stay F32 as llama.cpp keeps them.
    /// <see cref="LlamaConfig.RopeStyle"/> is ignored: a GGUF is always interleaved.</summary>
    public static void WriteGguf(string path, LlamaConfig config, int seed, TensorType weightType = TensorType.F32,
        IProgress<LoadProgress>? progress = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        Check(config, weightType);
        var vocab = new SyntheticVocabulary(config.VocabSize);
        var w = new GgufWriter();
        w.Add("general.architecture", "llama");
        w.Add("general.name", $"synthetic-{seed}");
        w.Add("general.file_type", weightType switch { TensorType.F32 => 0u, TensorType.F16 => 1u, TensorType.Q8_0 => 7u, _ => 32u });
        w.Add("llama.context_length", (uint)config.ContextLength);
        w.Add("llama.embedding_length", (uint)config.Dim);
        w.Add("llama.block_count", (uint)config.Layers);
        w.Add("llama.feed_forward_length", (uint)config.FfnDim);
        w.Add("llama.attention.head_count", (uint)config.QHeads);
        w.Add("llama.attention.head_count_kv", (uint)config.KvHeads);
        w.Add("llama.attention.key_length", (uint)config.HeadDim);
        w.Add("llama.attention.value_length", (uint)config.HeadDim);
        w.Add("llama.rope.dimension_count", (uint)config.HeadDim);
        w.Add("llama.attention.layer_norm_rms_epsilon", config.NormEps);
        w.Add("llama.rope.freq_base", config.RopeTheta);
        w.Add("llama.vocab_size", (uint)config.VocabSize);
        var scaling = config.RopeScaling;
        if (scaling.Kind == RopeScalingKind.Linear)
        {
            w.Add("llama.rope.scaling.type", "linear");
            w.Add("llama.rope.scaling.factor", scaling.Factor);
        }
        if (scaling.Kind != RopeScalingKind.None) w.Add("llama.rope.scaling.original_context_length", (uint)scaling.OriginalContext);
        w.Add("tokenizer.ggml.model", "gpt2");
        w.Add("tokenizer.ggml.pre", "llama-bpe");
        w.Add("tokenizer.ggml.tokens", vocab.Tokens.ToArray());
        w.Add("tokenizer.ggml.token_type", vocab.Types.Select(t => (int)t).ToArray());
        w.Add("tokenizer.ggml.merges", vocab.Merges.ToArray());
        w.Add("tokenizer.ggml.bos_token_id", (uint)vocab.BosId);
        w.Add("tokenizer.ggml.eos_token_id", (uint)vocab.EosId);
        w.Add("tokenizer.ggml.add_bos_token", true);
        w.Add("tokenizer.ggml.add_eos_token", false);
        w.Add("tokenizer.chat_template", SyntheticVocabulary.ChatTemplate);

        var tensors = new List<(string Name, TensorType Type, long[] Shape)>();
        if (scaling.Kind == RopeScalingKind.Llama3)   // llama.cpp's form of Llama 3.1 scaling
            tensors.Add((GgufConfigReader.RopeFreqsTensor, TensorType.F32, [config.HeadDim / 2]));
        tensors.AddRange(TensorNames.Expected(config).Select(t => (t.Name, t.Shape.Length == 1 ? TensorType.F32 : weightType, t.Shape)));
        long total = tensors.Sum(t => TensorEncoding.ByteCount(t.Type, t.Shape.Aggregate(1L, (a, b) => a * b))), done = 0;
        foreach (var (name, type, shape) in tensors)
            w.AddTensor(name, type, shape, stream =>
            {
                if (name == GgufConfigReader.RopeFreqsTensor)
                    WriteValues(stream, RopeFrequencyFactors.Compute(scaling, config.HeadDim, config.RopeTheta), type);
                else
                    WriteRows(stream, name, shape, type, config, seed, interleaveRows: IsQk(name));
                done += TensorEncoding.ByteCount(type, shape.Aggregate(1L, (a, b) => a * b));
                progress?.Report(new LoadProgress("write", done, total));
            });
        w.Write(path);
    }

    /// <summary>Writes config.json, model.safetensors (or <paramref name="shards"/> files and
    /// model.safetensors.index.json), tokenizer.json and tokenizer_config.json into <paramref name="folder"/>.</summary>
    public static void WriteSafetensorsFolder(string folder, LlamaConfig config, int seed, TensorType weightType = TensorType.F32, int shards = 1)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        if (weightType == TensorType.Q8_0) throw new ArgumentException("safetensors folders hold F32, F16 or BF16 weights, not Q8_0", nameof(weightType));
        Check(config, weightType);
        var tensors = TensorNames.Expected(config).ToList();
        if (shards < 1 || shards > tensors.Count)
            throw new ArgumentOutOfRangeException(nameof(shards), shards, $"between 1 and {tensors.Count} shards (one per tensor)");
        Directory.CreateDirectory(folder);
        var vocab = new SyntheticVocabulary(config.VocabSize);
        long Bytes((string Name, long[] Shape) t) => TensorEncoding.ByteCount(weightType, t.Shape.Aggregate(1L, (a, b) => a * b));

        // Contiguous groups of about equal bytes, each non-empty.
        long total = tensors.Sum(Bytes), acc = 0;
        var groups = Enumerable.Range(0, shards).Select(_ => new List<(string Name, long[] Shape)>()).ToList();
        for (int i = 0, g = 0; i < tensors.Count; i++)
        {
            bool onlyEnoughLeft = tensors.Count - i == shards - 1 - g;
            if (g < shards - 1 && groups[g].Count > 0 && (onlyEnoughLeft || acc >= total * (g + 1) / shards)) g++;
            groups[g].Add(tensors[i]);
            acc += Bytes(tensors[i]);
        }
        var weightMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
        for (int s = 0; s < shards; s++)
        {
            string file = shards == 1 ? "model.safetensors" : $"model-{s + 1:D5}-of-{shards:D5}.safetensors";
            foreach (var t in groups[s]) weightMap[TensorNames.ToHuggingFace(t.Name)] = file;
            WriteShard(Path.Combine(folder, file), groups[s], weightType, config, seed);
        }
        if (shards > 1)
            HuggingFaceJsonFiles.Write(Path.Combine(folder, "model.safetensors.index.json"), j =>
            {
                j.WriteStartObject("metadata");
                j.WriteNumber("total_size", total);
                j.WriteEndObject();
                j.WriteStartObject("weight_map");
                foreach (var (k, v) in weightMap) j.WriteString(k, v);
                j.WriteEndObject();
            });
        HuggingFaceJsonFiles.WriteConfig(Path.Combine(folder, "config.json"), config, weightType, vocab);
        HuggingFaceJsonFiles.WriteTokenizer(Path.Combine(folder, "tokenizer.json"), vocab);
        HuggingFaceJsonFiles.WriteTokenizerConfig(Path.Combine(folder, "tokenizer_config.json"), vocab, config.ContextLength);
    }

    private static bool IsQk(string name) => name.Contains(".attn_q.", StringComparison.Ordinal) || name.Contains(".attn_k.", StringComparison.Ordinal);

    private static void Check(LlamaConfig config, TensorType weightType)
    {
        ArgumentNullException.ThrowIfNull(config);
        try { ConfigValidator.Validate(config, "config"); }
        catch (ModelFormatException e) { throw new ArgumentException(e.Message, nameof(config), e); }
        if (weightType == TensorType.Q8_0 && (config.Dim % 32 != 0 || config.FfnDim % 32 != 0 || config.QHeads * config.HeadDim % 32 != 0))
            throw new ArgumentException($"Q8_0 needs dim ({config.Dim}), ffn ({config.FfnDim}) and heads*head_dim ({config.QHeads * config.HeadDim}) to be multiples of 32", nameof(config));
        if (!Enum.IsDefined(weightType)) throw new ArgumentOutOfRangeException(nameof(weightType), weightType, "not a tensor type");
    }

    /// <summary>Streams a tensor row by row; for GGUF q/k, GGUF row r holds Hugging Face row HuggingFaceRow(r).</summary>
    private static void WriteRows(Stream stream, string name, long[] shape, TensorType type, LlamaConfig config, int seed, bool interleaveRows)
    {
        long rows = shape.Length == 1 ? 1 : shape[0];
        int columns = (int)shape[^1];
        var (mean, std) = SyntheticWeights.Distribution(name, config);
        var values = new float[columns];
        var bytes = new byte[TensorEncoding.ByteCount(type, columns)];
        for (long r = 0; r < rows; r++)
        {
            long source = interleaveRows ? RopeRowPermutation.HuggingFaceRow(r, config.HeadDim) : r;
            SyntheticWeights.FillRow(seed, name, source, mean, std, values);
            TensorEncoding.Encode(values, type, bytes);
            stream.Write(bytes);
        }
    }

    private static void WriteValues(Stream stream, float[] values, TensorType type)
    {
        var bytes = new byte[TensorEncoding.ByteCount(type, values.Length)];
        TensorEncoding.Encode(values, type, bytes);
        stream.Write(bytes);
    }

    private static void WriteShard(string path, List<(string Name, long[] Shape)> tensors, TensorType type, LlamaConfig config, int seed)
    {
        var w = new SafetensorsWriter();
        foreach (var (name, shape) in tensors)
            w.AddTensor(TensorNames.ToHuggingFace(name), type, shape, s => WriteRows(s, name, shape, type, config, seed, interleaveRows: false));
        w.Write(path);
    }
}
