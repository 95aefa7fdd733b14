using Infinite.Models;
using Infinite.Tokenization;

namespace Infinite.Tests.Models;

public sealed class SyntheticModelTests : IDisposable
{
    private readonly ModelTestFiles _files = new();

    public void Dispose() => _files.Dispose();

    /// <summary>The value the generator meant for element (row, column) of a tensor, in Hugging Face row order.</summary>
    private static float[] Generated(string name, LlamaConfig c, int seed, long[] shape)
    {
        long rows = shape.Length == 1 ? 1 : shape[0];
        int columns = (int)shape[^1];
        var (mean, std) = SyntheticWeights.Distribution(name, c);
        var values = new float[rows * columns];
        for (long r = 0; r < rows; r++) SyntheticWeights.FillRow(seed, name, r, mean, std, values.AsSpan((int)(r * columns), columns));
        return values;
    }

    [Fact]
    public void Gguf_reads_back_the_config_metadata_and_tokenizer_it_was_written_with()
    {
        var c = ModelTestFiles.Small;
        string path = _files.WriteGguf(c, seed: 3);
        var progress = new List<LoadProgress>();
        using var model = ModelFile.Open(path, new SynchronousProgress(progress));

        Assert.Equal(ModelFormat.Gguf, model.Format);
        Assert.Equal(c, model.Config);
        Assert.Equal("llama", model.Metadata["general.architecture"]);
        Assert.Equal((uint)c.Dim, model.Metadata["llama.embedding_length"]);
        Assert.Equal(TensorNames.Expected(c).Count(), model.Tensors.Count);
        Assert.Equal(model.Tensors.Count, progress.Count);
        Assert.Equal(progress[^1].Total, progress[^1].Done);
        Assert.Equal(model.Tensors.Sum(t => t.Bytes), progress[^1].Total);

        var expected = new SyntheticVocabulary(c.VocabSize).ToTokenizerData();
        var tok = model.Tokenizer;
        Assert.Equal(TokenizerKind.ByteLevelBpe, tok.Kind);
        Assert.Equal(c.VocabSize, tok.Tokens.Count);
        Assert.Equal(expected.Tokens, tok.Tokens);
        Assert.Equal(expected.Types, tok.Types);
        Assert.Equal(expected.Merges, tok.Merges);
        Assert.Equal("<|begin_of_text|>", tok.Tokens[tok.BosId]);
        Assert.Equal("<|end_of_text|>", tok.Tokens[tok.EosId]);
        Assert.Equal(["<|eot_id|>"], tok.ExtraEosIds!.Select(i => tok.Tokens[i]));
        Assert.True(tok.AddBos);
        Assert.False(tok.AddEos);
        Assert.Equal("llama-bpe", tok.Pre);
        Assert.Contains("<|start_header_id|>", tok.ChatTemplate);
        Assert.Null(tok.Scores);
    }

    [Theory]
    [InlineData(TensorType.F32)]
    [InlineData(TensorType.F16)]
    [InlineData(TensorType.BF16)]
    [InlineData(TensorType.Q8_0)]
    public void ReadFloats_matches_the_generated_weights_to_the_storage_precision(TensorType type)
    {
        var c = ModelTestFiles.Small;
        using var model = ModelFile.Open(_files.WriteGguf(c, seed: 17, type));
        foreach (var (name, shape) in TensorNames.Expected(c))
        {
            var t = model.GetTensor(name);
            Assert.Equal(shape.Length == 1 ? TensorType.F32 : type, t.Type);
            float[] actual = model.ReadFloats(name);
            if (name.Contains(".attn_q.", StringComparison.Ordinal) || name.Contains(".attn_k.", StringComparison.Ordinal))
                actual = RopeRowPermutation.ToHuggingFace(actual, c.HeadDim, (int)shape[^1]);
            float[] expected = Generated(name, c, 17, shape);
            Assert.Equal(expected.Length, actual.Length);
            for (int i = 0; i < expected.Length; i++)
            {
                float x = expected[i], y = actual[i];
                float tolerance = t.Type switch
                {
                    TensorType.F32 => 0,
                    TensorType.F16 => MathF.Max(MathF.Abs(x) * MathF.Pow(2, -11), MathF.Pow(2, -25)),
                    TensorType.BF16 => MathF.Abs(x) * MathF.Pow(2, -8),
                    _ => expected.Skip(i / 32 * 32).Take(32).Max(MathF.Abs) / 127 / 2 * 1.001f,
                };
                if (!(MathF.Abs(x - y) <= tolerance)) Assert.Fail($"{name}[{i}]: {y} stored for {x} ({t.Type}, tolerance {tolerance})");
            }
        }
    }

    [Fact]
    public void Weights_are_seeded_random_not_constant_and_scaled_per_layer_kind()
    {
        var c = ModelTestFiles.Small;
        using var a = ModelFile.Open(_files.WriteGguf(c, seed: 1, name: "a.gguf"));
        using var b = ModelFile.Open(_files.WriteGguf(c, seed: 2, name: "b.gguf"));
        using var a2 = ModelFile.Open(_files.WriteGguf(c, seed: 1, name: "a2.gguf"));
        Assert.Equal(a.ReadFloats("blk.1.ffn_up.weight"), a2.ReadFloats("blk.1.ffn_up.weight"));
        Assert.NotEqual(a.ReadFloats("blk.1.ffn_up.weight"), b.ReadFloats("blk.1.ffn_up.weight"));
        Assert.NotEqual(a.ReadFloats("blk.0.ffn_up.weight"), a.ReadFloats("blk.1.ffn_up.weight"));

        static double Std(float[] v) => Math.Sqrt(v.Average(x => (double)x * x) - Math.Pow(v.Average(), 2));
        Assert.InRange(Std(a.ReadFloats("token_embd.weight")), 0.9, 1.1);
        Assert.InRange(Std(a.ReadFloats("blk.0.attn_q.weight")), 0.9 / 8, 1.1 / 8);
        Assert.InRange(Std(a.ReadFloats("blk.0.ffn_down.weight")), 0.9 / Math.Sqrt(96 * 4), 1.1 / Math.Sqrt(96 * 4));
        var norm = a.ReadFloats("blk.0.attn_norm.weight");
        Assert.InRange(norm.Average(), 0.97, 1.03);
        Assert.InRange(Std(norm), 0.02, 0.08);
    }

    [Fact]
    public void Demo_config_is_the_12M_benchmark_model_and_writes_as_Q8_0()
    {
        var c = SyntheticModel.DemoConfig;
        Assert.Equal((512, 512, 4, 8, 2, 64, 1536, 131072), (c.VocabSize, c.Dim, c.Layers, c.QHeads, c.KvHeads, c.HeadDim, c.FfnDim, c.ContextLength));
        Assert.InRange(c.ParameterCount, 11_000_000, 13_000_000);
        Assert.False(c.TiedEmbeddings);
        var reports = new List<LoadProgress>();
        string path = _files.PathOf("demo.gguf");
        SyntheticModel.WriteGguf(path, c, seed: 1, TensorType.Q8_0, new SynchronousProgress(reports));
        Assert.Equal(reports[^1].Total, reports[^1].Done);
        using var m = ModelFile.Open(path);
        Assert.Equal(c, m.Config);
        Assert.Equal(c.ParameterCount, m.Tensors.Sum(t => t.ElementCount));
        Assert.InRange(new FileInfo(path).Length, c.ParameterCount, c.ParameterCount * 12 / 10);   // about 1.06 bytes a weight
    }

    /// <summary>One token through every layer in float64 (a single position attends only to itself, so the
    /// attention output is its own v): the residual stream must stay O(1) however deep the model.</summary>
    [Fact]
    public void Hidden_states_stay_order_one_over_depth()
    {
        var c = ModelTestFiles.Small with { Layers = 12 };
        using var m = ModelFile.Open(_files.WriteGguf(c, seed: 6));
        static double[] Norm(double[] h, float[] w, double eps)
        {
            double rms = Math.Sqrt(h.Average(v => v * v) + eps);
            return h.Select((v, i) => v / rms * w[i]).ToArray();
        }
        static double[] Mul(float[] w, double[] x)
        {
            var y = new double[w.Length / x.Length];
            for (int r = 0; r < y.Length; r++)
                for (int i = 0; i < x.Length; i++) y[r] += w[r * x.Length + i] * x[i];
            return y;
        }
        float[] embedding = m.ReadFloats("token_embd.weight");
        foreach (int token in new[] { 3, 77, 290 })
        {
            var h = embedding.Skip(token * c.Dim).Take(c.Dim).Select(v => (double)v).ToArray();
            for (int l = 0; l < c.Layers; l++)
            {
                var v = Mul(m.ReadFloats(TensorNames.AttnV(l)), Norm(h, m.ReadFloats(TensorNames.AttnNorm(l)), c.NormEps));
                var heads = Enumerable.Range(0, c.QHeads * c.HeadDim).Select(i => v[i / c.HeadDim / c.GroupSize * c.HeadDim + i % c.HeadDim]).ToArray();
                h = h.Zip(Mul(m.ReadFloats(TensorNames.AttnOutput(l)), heads), (a, b) => a + b).ToArray();
                var x = Norm(h, m.ReadFloats(TensorNames.FfnNorm(l)), c.NormEps);
                var gate = Mul(m.ReadFloats(TensorNames.FfnGate(l)), x);
                var up = Mul(m.ReadFloats(TensorNames.FfnUp(l)), x);
                var act = gate.Zip(up, (g, u) => g / (1 + Math.Exp(-g)) * u).ToArray();
                h = h.Zip(Mul(m.ReadFloats(TensorNames.FfnDown(l)), act), (a, b) => a + b).ToArray();
                double rms = Math.Sqrt(h.Average(e => e * e));
                Assert.InRange(rms, 0.5, 2.0);
            }
        }
    }

    [Fact]
    public void Vocabulary_has_bytes_specials_then_merges_learned_from_text()
    {
        var v = new SyntheticVocabulary(512);
        Assert.Equal(512, v.Tokens.Count);
        Assert.Equal(512, v.Tokens.Distinct().Count());
        Assert.Equal("!", v.Tokens[0]);
        Assert.Equal("Ġ", SyntheticVocabulary.ByteTokens[' ']);
        Assert.Equal(SyntheticVocabulary.SpecialTokens, v.Tokens.Skip(256).Take(5));
        Assert.All(v.Tokens.Skip(256).Take(5).Select((_, i) => v.Types[256 + i]), t => Assert.Equal(TokenType.Control, t));
        Assert.Equal("Ġ t", v.Merges[0]);                   // " t" is the most frequent pair of the text
        Assert.Contains("Ġthe", v.Tokens);
        Assert.All(v.Merges, m => Assert.Contains(m.Replace(" ", "", StringComparison.Ordinal), v.Tokens));
        Assert.Equal(v.Merges, new SyntheticVocabulary(512).Merges);
        var small = new SyntheticVocabulary(261);
        Assert.Empty(small.Merges);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new SyntheticVocabulary(260));
        Assert.Contains("at least 261", e.Message);
        var large = new SyntheticVocabulary(4000);   // more than the text can teach: reserved tokens fill it
        Assert.Equal(4000, large.Tokens.Count);
        Assert.Equal(TokenType.Control, large.Types[^1]);
    }

    [Fact]
    public void Rope_scaling_round_trips_linear_in_metadata_and_llama3_through_the_rope_freqs_tensor()
    {
        var linear = ModelTestFiles.Small with { RopeScaling = new RopeScaling(RopeScalingKind.Linear, 4f, OriginalContext: 128) };
        using (var m = ModelFile.Open(_files.WriteGguf(linear, 5, name: "linear.gguf")))
            Assert.Equal(linear, m.Config);

        var llama3 = ModelTestFiles.Small with { RopeTheta = 500000f, RopeScaling = new RopeScaling(RopeScalingKind.Llama3, 8f, 1f, 4f, 64) };
        using (var m = ModelFile.Open(_files.WriteGguf(llama3, 5, name: "llama3.gguf")))
        {
            Assert.Equal(llama3, m.Config);
            var factors = m.ReadFloats("rope_freqs.weight");
            Assert.Equal(1f, factors[0]);
            Assert.Equal(8f, factors[^1]);
        }
    }

    [Fact]
    public void Generator_refuses_configs_it_cannot_write()
    {
        var e = Assert.Throws<ArgumentException>(() => SyntheticModel.WriteGguf(_files.PathOf("x.gguf"), ModelTestFiles.Small with { KvHeads = 3 }, 1));
        Assert.Contains("multiple of 3 KV heads", e.Message);
        e = Assert.Throws<ArgumentException>(() => SyntheticModel.WriteGguf(_files.PathOf("x.gguf"), ModelTestFiles.Small with { FfnDim = 40 }, 1, TensorType.Q8_0));
        Assert.Contains("Q8_0", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => SyntheticModel.WriteGguf(_files.PathOf("x.gguf"), ModelTestFiles.Small with { VocabSize = 100 }, 1));
        Assert.Throws<ArgumentException>(() => SyntheticModel.WriteSafetensorsFolder(_files.PathOf("q8"), ModelTestFiles.Small, 1, TensorType.Q8_0));
    }

    [Fact]
    public void Missing_metadata_key_is_named()
    {
        string path = _files.WriteGguf(ModelTestFiles.Small, 2);
        byte[] bytes = File.ReadAllBytes(path);
        int at = bytes.AsSpan().IndexOf("llama.feed_forward_length"u8);
        bytes[at + "llama.feed_forward_length".Length - 1] = (byte)'x';
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<ModelFormatException>(() => ModelFile.Open(path));
        Assert.Equal("model.gguf: metadata key 'llama.feed_forward_length' is missing", e.Message);
        Assert.Throws<FileNotFoundException>(() => ModelFile.Open(_files.PathOf("nothing.gguf")));
    }

    [Fact]
    public void Tensor_access_checks_names_and_pointers()
    {
        using var model = ModelFile.Open(_files.WriteGguf(ModelTestFiles.Small, 4, TensorType.F16));
        var e = Assert.Throws<KeyNotFoundException>(() => model.GetTensor("blk.0.attn_qq.weight"));
        Assert.Contains("blk.0.attn_q.weight", e.Message);
        var t = model.GetTensor("blk.1.ffn_gate.weight");
        Assert.Equal(t.Bytes, model.GetBytes(t).Length);
        Assert.Throws<ArgumentException>(() => model.GetPointer(t with { Offset = t.Offset + 2 }));
        unsafe
        {
            Assert.Equal(model.GetBytes(t)[5], *(byte*)(model.GetPointer(t) + 5));
        }
        model.Dispose();
        Assert.Throws<ObjectDisposedException>(() => model.GetPointer(t));
        Assert.Throws<ObjectDisposedException>(() => model.ReadFloats(t.Name));
    }

    /// <summary>Records reports on the calling thread (Progress&lt;T&gt; posts them asynchronously).</summary>
    private sealed class SynchronousProgress(List<LoadProgress> reports) : IProgress<LoadProgress>
    {
        public void Report(LoadProgress value) => reports.Add(value);
    }
}
