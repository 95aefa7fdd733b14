using System.Text.Json;
using Infinite.Cli;
using Infinite.Models;

namespace Infinite.Tests.Engine;

/// <summary>`--instances` and `--cluster-policy` of `infinite generate` and `infinite bench`, output captured.</summary>
public sealed class ClusterEngineCliTests : IDisposable
{
    private static readonly LlamaConfig Tiny = SyntheticModel.DemoConfig with
    {
        Dim = 64, Layers = 2, QHeads = 4, KvHeads = 2, HeadDim = 16, FfnDim = 96, VocabSize = 300, ContextLength = 4096,
    };

    private readonly string _dir = Directory.CreateTempSubdirectory("infinite-cluster-cli-").FullName;
    private readonly string _model;

    public ClusterEngineCliTests()
    {
        _model = Path.Combine(_dir, "tiny.gguf");
        SyntheticModel.WriteGguf(_model, Tiny, seed: 5);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static (int Code, string Output, string Error) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = CliApp.CreateRoot().Parse(args).Invoke(new System.CommandLine.InvocationConfiguration { Output = output, Error = error });
        return (code, output.ToString(), error.ToString());
    }

    [Fact]
    public void Generate_over_instances_prints_what_one_instance_prints()
    {
        string[] args = ["generate", "--model", _model, "--prompt", "Hello there", "-n", "6", "--temperature", "0", "--ignore-eos",
            "--kv-type", "f32", "--page-size", "16", "--kv-memory", "4MiB"];
        var one = Run(args);
        var three = Run([.. args, "--instances", "3"]);
        Assert.True(one.Code == 0, one.Error);
        Assert.True(three.Code == 0, three.Error);
        Assert.Contains("over 3 instances of", three.Error);
        Assert.Equal(one.Output, three.Output);
    }

    [Fact]
    public void Bench_over_instances_reports_its_instances()
    {
        var run = Run("bench", "--model", _model, "--instances", "2", "--kv-memory", "8MiB", "--contexts", "256", "--batches", "2",
            "--decode-steps", "2", "--prefill-contexts", "128", "--chunk", "64", "--json", "-");
        Assert.True(run.Code == 0, run.Error);
        using JsonDocument json = JsonDocument.Parse(run.Output);
        Assert.Equal(2, json.RootElement.GetProperty("instances").GetInt32());
        Assert.Equal(2, json.RootElement.GetProperty("results").GetArrayLength());
    }

    [Theory]
    [InlineData("--instances", "0", "--instances 0")]
    [InlineData("--cluster-policy", "greedy", "--cluster-policy 'greedy'")]
    public void Bad_cluster_flags_are_named(string flag, string value, string expected)
    {
        var run = Run("generate", "--model", _model, "--prompt", "x", flag, value);
        Assert.Equal(1, run.Code);
        Assert.Contains(expected, run.Error);
    }

    [Fact]
    public void Sparse_with_instances_runs()
    {
        var run = Run("generate", "--model", _model, "--prompt", "x", "--instances", "2", "--sparse");
        Assert.Equal(0, run.Code);
    }
}
