using System.Text.Json;

namespace Infinite.Models;

/// <summary>The JSON files of a Hugging Face model folder for a synthetic model: config.json, tokenizer.json
/// (BPE model, ByteLevel pre-tokenizer and decoder, special tokens as added tokens), tokenizer_config.json.</summary>
internal static class HuggingFaceJsonFiles
{
    public static void WriteConfig(string path, LlamaConfig c, TensorType type, SyntheticVocabulary vocab) => Write(path, j =>
    {
        j.WriteStartArray("architectures");
        j.WriteStringValue("LlamaForCausalLM");
        j.WriteEndArray();
        j.WriteString("model_type", "llama");
        j.WriteNumber("vocab_size", c.VocabSize);
        j.WriteNumber("hidden_size", c.Dim);
        j.WriteNumber("num_hidden_layers", c.Layers);
        j.WriteNumber("intermediate_size", c.FfnDim);
        j.WriteNumber("num_attention_heads", c.QHeads);
        j.WriteNumber("num_key_value_heads", c.KvHeads);
        j.WriteNumber("head_dim", c.HeadDim);
        j.WriteNumber("rms_norm_eps", c.NormEps);
        j.WriteNumber("rope_theta", c.RopeTheta);
        j.WriteNumber("max_position_embeddings", c.ContextLength);
        j.WriteBoolean("tie_word_embeddings", c.TiedEmbeddings);
        j.WriteNumber("bos_token_id", vocab.BosId);
        j.WriteNumber("eos_token_id", vocab.EosId);
        j.WriteString("hidden_act", "silu");
        j.WriteString("torch_dtype", type switch { TensorType.F16 => "float16", TensorType.BF16 => "bfloat16", _ => "float32" });
        var s = c.RopeScaling;
        if (s.Kind == RopeScalingKind.None) j.WriteNull("rope_scaling");
        else
        {
            j.WriteStartObject("rope_scaling");
            j.WriteString("rope_type", s.Kind == RopeScalingKind.Linear ? "linear" : "llama3");
            j.WriteNumber("factor", s.Factor);
            if (s.Kind == RopeScalingKind.Llama3)
            {
                j.WriteNumber("low_freq_factor", s.LowFreqFactor);
                j.WriteNumber("high_freq_factor", s.HighFreqFactor);
                j.WriteNumber("original_max_position_embeddings", s.OriginalContext);
            }
            j.WriteEndObject();
        }
    });

    public static void WriteTokenizer(string path, SyntheticVocabulary vocab) => Write(path, j =>
    {
        j.WriteString("version", "1.0");
        j.WriteNull("truncation");
        j.WriteNull("padding");
        j.WriteStartArray("added_tokens");
        for (int id = 0; id < vocab.Tokens.Count; id++)
        {
            if (vocab.Types[id] != Tokenization.TokenType.Control) continue;
            j.WriteStartObject();
            j.WriteNumber("id", id);
            j.WriteString("content", vocab.Tokens[id]);
            j.WriteBoolean("single_word", false);
            j.WriteBoolean("lstrip", false);
            j.WriteBoolean("rstrip", false);
            j.WriteBoolean("normalized", false);
            j.WriteBoolean("special", true);
            j.WriteEndObject();
        }
        j.WriteEndArray();
        j.WriteNull("normalizer");
        j.WriteStartObject("pre_tokenizer");
        j.WriteString("type", "ByteLevel");
        j.WriteBoolean("add_prefix_space", false);
        j.WriteBoolean("trim_offsets", true);
        j.WriteBoolean("use_regex", true);
        j.WriteEndObject();
        j.WriteStartObject("post_processor");
        j.WriteString("type", "TemplateProcessing");
        j.WriteStartArray("single");
        WriteSpecial(j, vocab.Tokens[vocab.BosId]);
        j.WriteStartObject(); j.WriteStartObject("Sequence"); j.WriteString("id", "A"); j.WriteNumber("type_id", 0); j.WriteEndObject(); j.WriteEndObject();
        j.WriteEndArray();
        j.WriteStartObject("special_tokens");
        j.WriteStartObject(vocab.Tokens[vocab.BosId]);
        j.WriteString("id", vocab.Tokens[vocab.BosId]);
        j.WriteStartArray("ids"); j.WriteNumberValue(vocab.BosId); j.WriteEndArray();
        j.WriteStartArray("tokens"); j.WriteStringValue(vocab.Tokens[vocab.BosId]); j.WriteEndArray();
        j.WriteEndObject();
        j.WriteEndObject();
        j.WriteEndObject();
        j.WriteStartObject("decoder");
        j.WriteString("type", "ByteLevel");
        j.WriteBoolean("add_prefix_space", true);
        j.WriteBoolean("trim_offsets", true);
        j.WriteBoolean("use_regex", true);
        j.WriteEndObject();
        j.WriteStartObject("model");
        j.WriteString("type", "BPE");
        j.WriteNull("dropout");
        j.WriteNull("unk_token");
        j.WriteBoolean("fuse_unk", false);
        j.WriteBoolean("byte_fallback", false);
        j.WriteBoolean("ignore_merges", false);
        j.WriteStartObject("vocab");
        for (int id = 0; id < vocab.Tokens.Count; id++) j.WriteNumber(vocab.Tokens[id], id);
        j.WriteEndObject();
        j.WriteStartArray("merges");
        foreach (string m in vocab.Merges) j.WriteStringValue(m);
        j.WriteEndArray();
        j.WriteEndObject();
    });

    public static void WriteTokenizerConfig(string path, SyntheticVocabulary vocab, int contextLength) => Write(path, j =>
    {
        j.WriteBoolean("add_bos_token", true);
        j.WriteBoolean("add_eos_token", false);
        j.WriteString("bos_token", vocab.Tokens[vocab.BosId]);
        j.WriteString("eos_token", vocab.Tokens[vocab.EosId]);
        j.WriteString("chat_template", SyntheticVocabulary.ChatTemplate);
        j.WriteNumber("model_max_length", contextLength);
        j.WriteString("tokenizer_class", "PreTrainedTokenizerFast");
    });

    private static void WriteSpecial(Utf8JsonWriter j, string token)
    {
        j.WriteStartObject();
        j.WriteStartObject("SpecialToken");
        j.WriteString("id", token);
        j.WriteNumber("type_id", 0);
        j.WriteEndObject();
        j.WriteEndObject();
    }

    public static void Write(string path, Action<Utf8JsonWriter> body)
    {
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write);
        using var j = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        j.WriteStartObject();
        body(j);
        j.WriteEndObject();
    }
}
