using System.Text.Json;
using System.Text.Json.Nodes;
using Infinite.Models;

namespace Infinite.Tests.Models;

public sealed class SafetensorsFolderTests : IDisposable
{
    private readonly ModelTestFiles _files = new();

    public void Dispose() => _files.Dispose();

    private static bool IsQk(string name) => name.Contains(".attn_q.", StringComparison.Ordinal) || name.Contains(".attn_k.", StringComparison.Ordinal);

    [Theory]
    [InlineData(1, TensorType.F32)]
    [InlineData(3, TensorType.F32)]
    [InlineData(2, TensorType.BF16)]
    [InlineData(4, TensorType.F16)]
    public void Folder_holds_the_same_model_as_the_gguf_of_the_same_seed(int shards, TensorType type)
    {
        var c = ModelTestFiles.Small with { TiedEmbeddings = shards == 3 };
        string folder = _files.PathOf("hf");
        SyntheticModel.WriteSafetensorsFolder(folder, c, seed: 9, type, shards);
        using var gguf = ModelFile.Open(_files.WriteGguf(c, seed: 9, type));
        using var hf = ModelFile.Open(folder);

        Assert.Equal(ModelFormat.Safetensors, hf.Format);
        Assert.Equal(c with { RopeStyle = RopeStyle.Half }, hf.Config);
        Assert.Equal(gguf.Config with { RopeStyle = RopeStyle.Half }, hf.Config);
        Assert.Equal(shards, hf.Files.Count);
        Assert.Equal(shards > 1, File.Exists(Path.Combine(folder, "model.safetensors.index.json")));
        Assert.Equal(gguf.Tensors.Select(t => t.Name).Order(), hf.Tensors.Select(t => t.Name).Order());
        foreach (var t in hf.Tensors)
        {
            var g = gguf.GetTensor(t.Name);
            Assert.Equal(g.Shape, t.Shape);
            Assert.Equal(type, t.Type);
            float[] fromGguf = gguf.ReadFloats(t.Name);
            if (IsQk(t.Name))
            {
                var raw = hf.ReadFloats(t.Name);
                Assert.NotEqual(raw, fromGguf);   // the row orders really differ
                fromGguf = RopeRowPermutation.ToHuggingFace(fromGguf, c.HeadDim, (int)t.Shape[^1]);
            }
            float[] fromHf = hf.ReadFloats(t.Name);
            if (g.Type == t.Type) Assert.Equal(fromGguf, fromHf);
            else   // GGUF norms stay F32; the folder stores them in the chosen type
                for (int i = 0; i < fromHf.Length; i++)
                    Assert.True(MathF.Abs(fromHf[i] - fromGguf[i]) <= MathF.Abs(fromGguf[i]) * MathF.Pow(2, -8), $"{t.Name}[{i}]");
        }

        using var tokenizerJson = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "tokenizer.json")));
        var model = tokenizerJson.RootElement.GetProperty("model");
        Assert.Equal("BPE", model.GetProperty("type").GetString());
        Assert.Equal(gguf.Tokenizer.Tokens, model.GetProperty("vocab").EnumerateObject().OrderBy(p => p.Value.GetInt32()).Select(p => p.Name));
        Assert.Equal(gguf.Tokenizer.Merges, model.GetProperty("merges").EnumerateArray().Select(m => m.GetString()));
        Assert.Equal(5, tokenizerJson.RootElement.GetProperty("added_tokens").GetArrayLength());
        using var tokenizerConfig = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "tokenizer_config.json")));
        Assert.Equal("<|begin_of_text|>", tokenizerConfig.RootElement.GetProperty("bos_token").GetString());
        Assert.Equal(gguf.Tokenizer.ChatTemplate, tokenizerConfig.RootElement.GetProperty("chat_template").GetString());
    }

    [Fact]
    public void Qk_permutation_is_llama_cpp_s_and_inverts()
    {
        // llama.cpp: w.reshape(heads, 2, hd/2, cols).swapaxes(1, 2): GGUF row (h, i, j) = HF row (h, j, i).
        Assert.Equal([0L, 4, 1, 5, 2, 6, 3, 7, 8, 12], Enumerable.Range(0, 10).Select(r => RopeRowPermutation.HuggingFaceRow(r, 8)));
        var rng = new Random(3);
        var x = Enumerable.Range(0, 3 * 8 * 5).Select(_ => (float)rng.NextDouble()).ToArray();
        var g = RopeRowPermutation.ToGguf(x, 8, 5);
        Assert.Equal(x.AsSpan(4 * 5, 5).ToArray(), g.AsSpan(1 * 5, 5).ToArray());
        Assert.Equal(x, RopeRowPermutation.ToHuggingFace(g, 8, 5));
    }

    private string Folder(LlamaConfig? config = null, int shards = 1)
    {
        string folder = _files.PathOf("m" + Guid.NewGuid().ToString("N")[..8]);
        SyntheticModel.WriteSafetensorsFolder(folder, config ?? ModelTestFiles.Small, 2, TensorType.F32, shards);
        return folder;
    }

    private static void EditConfig(string folder, Action<JsonObject> edit)
    {
        string path = Path.Combine(folder, "config.json");
        var node = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(node);
        File.WriteAllText(path, node.ToJsonString());
    }

    private static ModelFormatException OpenFails(string folder) => Assert.Throws<ModelFormatException>(() => ModelFile.Open(folder).Dispose());

    [Fact]
    public void Config_json_errors_name_the_key_and_the_file()
    {
        string f = Folder();
        EditConfig(f, o => o.Remove("num_hidden_layers"));
        var e = OpenFails(f);
        Assert.Contains("config.json", e.Message);
        Assert.Contains("'num_hidden_layers' is missing", e.Message);

        f = Folder();
        EditConfig(f, o => o["architectures"] = new JsonArray("GPT2LMHeadModel"));
        Assert.Contains("GPT2LMHeadModel", OpenFails(f).Message);

        f = Folder();
        EditConfig(f, o => o["hidden_size"] = "wide");
        Assert.Contains("'hidden_size' should be a positive integer", OpenFails(f).Message);

        f = Folder();
        EditConfig(f, o => o["rope_scaling"] = new JsonObject { ["rope_type"] = "yarn", ["factor"] = 4 });
        Assert.Contains("'yarn'", OpenFails(f).Message);

        f = Folder();
        File.WriteAllText(Path.Combine(f, "config.json"), "{ \"hidden_size\": 64, ");
        Assert.Contains("invalid JSON", OpenFails(f).Message);

        Assert.Contains("no config.json", OpenFails(_files.Folder).Message);
    }

    [Fact]
    public void Optional_config_keys_take_the_Hugging_Face_defaults()
    {
        string f = Folder();
        EditConfig(f, o => { o.Remove("head_dim"); o.Remove("rope_theta"); o.Remove("tie_word_embeddings"); o.Remove("architectures"); });
        using (var m = ModelFile.Open(f))
            Assert.Equal(ModelTestFiles.Small with { RopeStyle = RopeStyle.Half, RopeTheta = 10000f }, m.Config);
        EditConfig(f, o => o.Remove("num_key_value_heads"));   // now 4 KV heads: k_proj has half the rows it needs
        Assert.Contains("'model.layers.0.self_attn.k_proj.weight' (blk.0.attn_k.weight) has shape [32, 64], expected [64, 64]", OpenFails(f).Message);
    }

    [Fact]
    public void Llama3_rope_scaling_and_tied_embeddings_read_from_config_json()
    {
        var c = ModelTestFiles.Small with { TiedEmbeddings = true, RopeScaling = new RopeScaling(RopeScalingKind.Llama3, 32f, 1f, 4f, 8192) };
        using var m = ModelFile.Open(Folder(c));
        Assert.Equal(c with { RopeStyle = RopeStyle.Half }, m.Config);
        Assert.DoesNotContain(m.Tensors, t => t.Name == "output.weight");
    }

    [Fact]
    public void Missing_or_misshapen_tensors_are_named_with_both_names_and_shapes()
    {
        // A config that promises one more layer than the weights hold.
        string f = Folder();
        EditConfig(f, o => o["num_hidden_layers"] = 3);
        var e = OpenFails(f);
        Assert.Contains("model.layers.2.input_layernorm.weight", e.Message);
        Assert.Contains("missing", e.Message);

        f = Folder();
        EditConfig(f, o => o["intermediate_size"] = 128);
        e = OpenFails(f);
        Assert.Contains("model.layers.0.mlp.gate_proj.weight", e.Message);
        Assert.Contains("[96, 64]", e.Message);
        Assert.Contains("[128, 64]", e.Message);

        f = Folder();
        EditConfig(f, o => o["tie_word_embeddings"] = false);
        File.Delete(Path.Combine(f, "model.safetensors"));
        SyntheticModel.WriteSafetensorsFolder(_files.PathOf("tied"), ModelTestFiles.Small with { TiedEmbeddings = true }, 2);
        File.Copy(Path.Combine(_files.PathOf("tied"), "model.safetensors"), Path.Combine(f, "model.safetensors"));
        Assert.Contains("'lm_head.weight' (output.weight) is missing", OpenFails(f).Message);
    }

    [Fact]
    public void Shard_index_and_header_errors_name_the_file()
    {
        string f = Folder(shards: 2);
        File.Delete(Path.Combine(f, "model-00002-of-00002.safetensors"));
        var e = OpenFails(f);
        Assert.Contains("model.safetensors.index.json", e.Message);
        Assert.Contains("model-00002-of-00002.safetensors does not exist", e.Message);

        f = Folder();
        string shard = Path.Combine(f, "model.safetensors");
        byte[] bytes = File.ReadAllBytes(shard);
        int headerLength = (int)BitConverter.ToUInt64(bytes);
        string header = System.Text.Encoding.UTF8.GetString(bytes, 8, headerLength);
        // Same length, other dtype: the reader must refuse it by name.
        string changed = header.Replace("\"dtype\":\"F32\"", "\"dtype\":\"I32\"", StringComparison.Ordinal);
        File.WriteAllBytes(shard, [.. bytes[..8], .. System.Text.Encoding.UTF8.GetBytes(changed), .. bytes[(8 + headerLength)..]]);
        e = OpenFails(f);
        Assert.Contains("model.safetensors", e.Message);
        Assert.Contains("dtype I32 is not supported", e.Message);

        File.WriteAllBytes(shard, [.. bytes[..8], .. System.Text.Encoding.UTF8.GetBytes(header), .. bytes[(8 + headerLength)..^10]]);
        e = OpenFails(f);
        Assert.Contains("runs past the end of the file", e.Message);

        File.WriteAllBytes(shard, [.. BitConverter.GetBytes(1UL << 40), .. bytes[8..]]);
        Assert.Contains("header length 1099511627776 exceeds the file", OpenFails(f).Message);

        string changedOffsets = header.Replace("\"data_offsets\":[0,", "\"data_offsets\":[4,", StringComparison.Ordinal);
        File.WriteAllBytes(shard, [.. bytes[..8], .. System.Text.Encoding.UTF8.GetBytes(changedOffsets), .. bytes[(8 + headerLength)..]]);
        Assert.Contains("needs", OpenFails(f).Message);
    }

    [Fact]
    public void Safetensors_writer_and_header_round_trip_entries_and_metadata()
    {
        var rng = new Random(5);
        var values = Enumerable.Range(0, 6).Select(_ => (float)rng.NextDouble()).ToArray();
        var w = new SafetensorsWriter().AddMetadata("note", "häppy");
        w.AddTensor("a", TensorType.BF16, [2, 3], s => { var b = new byte[12]; TensorEncoding.Encode(values, TensorType.BF16, b); s.Write(b); });
        w.AddTensor("b", TensorType.F32, [6], s => { var b = new byte[24]; TensorEncoding.Encode(values, TensorType.F32, b); s.Write(b); });
        string path = _files.PathOf("x.safetensors");
        w.Write(path);
        var h = SafetensorsHeader.Read(path);
        Assert.Equal("häppy", h.Metadata["note"]);
        Assert.Equal(["a", "b"], h.Tensors.Select(t => t.Name));
        Assert.Equal([2L, 3], h.Tensors[0].Shape);
        Assert.Equal(0, h.Tensors[0].Offset % 8);
        Assert.Equal(h.Tensors[0].Offset + 12, h.Tensors[1].Offset);
        Assert.Equal(new FileInfo(path).Length, h.Tensors[1].Offset + 24);
        var decoded = new float[6];
        TensorEncoding.Decode(File.ReadAllBytes(path).AsSpan((int)h.Tensors[1].Offset, 24), TensorType.F32, decoded);
        Assert.Equal(values, decoded);
        Assert.Throws<ArgumentException>(() => w.AddTensor("q", TensorType.Q8_0, [32], _ => { }));
    }

    [Fact]
    public void Unknown_tensors_such_as_rotary_inv_freq_are_ignored()
    {
        Assert.Null(TensorNames.FromHuggingFace("model.layers.0.self_attn.rotary_emb.inv_freq"));
        Assert.Equal("blk.12.ffn_down.weight", TensorNames.FromHuggingFace("model.layers.12.mlp.down_proj.weight"));
        Assert.Equal("model.layers.12.mlp.down_proj.weight", TensorNames.ToHuggingFace("blk.12.ffn_down.weight"));

        // A second shard (no index: every *.safetensors counts) holding only a tensor Infinite does not use.
        string f = Folder();
        byte[] header = System.Text.Encoding.UTF8.GetBytes(
            "{\"model.layers.0.self_attn.rotary_emb.inv_freq\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}");
        File.WriteAllBytes(Path.Combine(f, "extra.safetensors"), [.. BitConverter.GetBytes((ulong)header.Length), .. header, .. new byte[8]]);
        using var m = ModelFile.Open(f);
        Assert.Equal(2, m.Files.Count);
        Assert.Equal(TensorNames.Expected(ModelTestFiles.Small).Count(), m.Tensors.Count);
    }
}
