using System.CommandLine;
using System.Text.Json;
using Infinite.Cli;
using Infinite.Models;

namespace Infinite.Tests.Cli;

/// <summary>`infinite generate` and `infinite bench` on a small synthetic GGUF, output captured.</summary>
public sealed class CliModelTests : IDisposable
{
    private static readonly LlamaConfig Tiny = SyntheticModel.DemoConfig with
    {
        Dim = 64, Layers = 2, QHeads = 4, KvHeads = 2, HeadDim = 16, FfnDim = 96, VocabSize = 300, ContextLength = 4096,
    };

    private readonly string _dir = Directory.CreateTempSubdirectory("infinite-cli-").FullName;
    private readonly string _model;

    public CliModelTests()
    {
        _model = Path.Combine(_dir, "tiny.gguf");
        SyntheticModel.WriteGguf(_model, Tiny, seed: 5);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static (int Code, string Output, string Error) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = CliApp.CreateRoot().Parse(args).Invoke(new InvocationConfiguration { Output = output, Error = error });
        return (code, output.ToString(), error.ToString());
    }

    [Fact]
    public void Generate_streams_the_requested_number_of_tokens_and_is_deterministic_when_greedy()
    {
        string[] args = ["generate", "--model", _model, "--prompt", "Hello", "-n", "7", "--temperature", "0", "--ignore-eos", "--kv-memory", "64MiB"];
        var first = Run(args);
        var second = Run(args);
        Assert.True(first.Code == 0, first.Error);
        Assert.Contains("[7 tokens", first.Error);
        Assert.Contains("finish: length", first.Error);
        Assert.Equal(first.Output, second.Output);
    }

    [Fact]
    public void Generate_runs_on_an_int8_kv_cache()
    {
        var run = Run("generate", "--model", _model, "--prompt", "Hello", "-n", "5", "--temperature", "0", "--ignore-eos",
            "--kv-type", "i8", "--kv-memory", "16MiB");
        Assert.True(run.Code == 0, run.Error);
        Assert.Contains("(I8)", run.Error);
        Assert.Contains("[5 tokens", run.Error);
        Assert.Equal(Infinite.Native.DataType.I8, ModelOptions.ParseKvType(" INT8 "));
    }

    [Fact]
    public void Generate_with_chat_renders_the_template_and_runs_sparse()
    {
        var run = Run("generate", "--model", _model, "--prompt", "Hi", "--chat", "--system", "Be brief.", "-n", "3",
            "--ignore-eos", "--sparse", "--sparse-budget", "128", "--kv-memory", "64MiB");
        Assert.True(run.Code == 0, run.Error);
        Assert.Contains("sparse attention", run.Error);
        Assert.Contains("[3 tokens", run.Error);
    }

    [Fact]
    public void Generate_keeps_streaming_heads_in_rings_with_sparse_ring_and_refuses_it_with_instances()
    {
        string[] args = ["generate", "--model", _model, "--prompt", "Hello there", "-n", "40", "--temperature", "0", "--ignore-eos",
            "--sparse", "--sparse-budget", "64", "--kv-memory", "64MiB"];
        var paged = Run(args);
        var ring = Run([.. args, "--sparse-ring"]);
        Assert.True(ring.Code == 0, ring.Error);
        Assert.Contains("[40 tokens", ring.Error);
        Assert.Contains("streaming heads in rings of", ring.Error);
        Assert.DoesNotContain("streaming heads in rings of", paged.Error);
        Assert.Equal(paged.Output, ring.Output);
        var refused = Run([.. args, "--sparse-ring", "--instances", "2"]);
        Assert.Equal(1, refused.Code);
        Assert.Contains("--sparse-ring keeps streaming heads in rings on one instance", refused.Error);
    }

    [Fact]
    public void Generate_takes_the_summary_width_and_refuses_an_unknown_one()
    {
        string[] args = ["generate", "--model", _model, "--prompt", "Hello there", "-n", "8", "--temperature", "0", "--ignore-eos",
            "--sparse", "--sparse-budget", "64", "--kv-memory", "64MiB"];
        var wide = Run([.. args, "--summary-bits", "32"]);
        Assert.True(wide.Code == 0, wide.Error);
        Assert.Contains("[8 tokens", wide.Error);
        var refused = Run([.. args, "--summary-bits", "5"]);
        Assert.Equal(1, refused.Code);
        Assert.Contains("--summary-bits 5: use 8, 16 or 32", refused.Error);
    }

    [Fact]
    public void Generate_reports_a_missing_model_file_as_an_error_not_a_crash()
    {
        var run = Run("generate", "--model", Path.Combine(_dir, "missing.gguf"), "--prompt", "x");
        Assert.Equal(1, run.Code);
        Assert.Contains("missing.gguf", run.Error);
    }

    [Fact]
    public void Generate_rejects_a_prompt_beyond_the_max_context_with_both_numbers()
    {
        var run = Run("generate", "--model", _model, "--prompt", new string('a', 200), "-n", "100", "--max-context", "64",
            "--kv-memory", "64MiB");
        Assert.Equal(1, run.Code);
        Assert.Contains("64", run.Error);
        Assert.Contains("error:", run.Error);
    }

    [Fact]
    public void Bench_writes_one_json_result_per_point()
    {
        var run = Run("bench", "--model", _model, "--contexts", "300", "--batches", "1,2", "--decode-steps", "2",
            "--prefill-contexts", "100", "--chunk", "64", "--kv-memory", "64MiB", "--json", "-");
        Assert.True(run.Code == 0, run.Error);
        using JsonDocument json = JsonDocument.Parse(run.Output);
        JsonElement[] results = [.. json.RootElement.GetProperty("results").EnumerateArray()];
        Assert.Equal(3, results.Length);
        Assert.Equal("prefill", results[0].GetProperty("kind").GetString());
        Assert.Equal(100, results[0].GetProperty("context").GetInt32());
        Assert.Equal([1, 2], results[1..].Select(r => r.GetProperty("batch").GetInt32()));
        Assert.All(results, r => Assert.True(r.GetProperty("tokensPerSecond").GetDouble() > 0));
    }

    [Fact]
    public void Bench_rejects_a_bad_list()
    {
        var run = Run("bench", "--model", _model, "--contexts", "4Q");
        Assert.Equal(1, run.Code);
        Assert.Contains("--contexts", run.Error);
    }

    [Theory]
    [InlineData("2GiB", 2L << 30)]
    [InlineData("512MiB", 512L << 20)]
    [InlineData("1.5G", 1_500_000_000L)]
    [InlineData("4096", 4096L)]
    public void Sizes_parse_with_binary_and_decimal_units(string text, long bytes)
        => Assert.Equal(bytes, ModelOptions.ParseBytes(text));

    [Theory]
    [InlineData("")]
    [InlineData("GiB")]
    [InlineData("3 parsecs")]
    public void Bad_sizes_say_what_is_wrong(string text)
        => Assert.Contains("'", Assert.Throws<ArgumentException>(() => ModelOptions.ParseBytes(text)).Message);
}
