using System.Net.Http.Json;
using System.Text.Json;
using Infinite.Models;
using Infinite.Packaging.Tests.Support;

namespace Infinite.Packaging.Tests.Cli;

/// <summary>
/// `mpirun -np N infinite ... --mpi` as an operator runs it: one process per rank (Open MPI, host buffers), rank 0
/// runs the engine and the other ranks serve its steps. Each rank's KV pool is too small for the prompt alone, so
/// the request is spread over the ranks' pools; its greedy tokens must equal one process with one big pool.
/// </summary>
public sealed class MpiCommandTests : IDisposable
{
    private static readonly LlamaConfig Tiny = SyntheticModel.DemoConfig with
    {
        Dim = 64, Layers = 2, QHeads = 4, KvHeads = 2, HeadDim = 16, FfnDim = 96, VocabSize = 300, ContextLength = 4096,
    };

    // A page of 64 tokens takes 18 KiB (bf16 K and V plus key summaries): 74 KiB per rank is 4 pages, 90 KiB 5. A
    // ~430-token prompt and its 24 new tokens need 7 pages, more than one rank's pool; a home may borrow half of each
    // other rank's pool (the default lending cap).
    private const string RankMemory = "74KiB";
    private const string SingleMemory = "256KiB";

    private static readonly Dictionary<string, string> MpiEnvironment = new()
    {
        ["OMPI_ALLOW_RUN_AS_ROOT"] = "1",
        ["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1",
        // Containers often lack the kernel's cross-memory attach; shared memory copies work everywhere.
        ["OMPI_MCA_btl_vader_single_copy_mechanism"] = "none",
    };

    private readonly string _dir = Directory.CreateTempSubdirectory("infinite-mpi-").FullName;
    private readonly string _model;
    private readonly string _prompt = string.Join(' ', Enumerable.Range(0, 60).Select(i => $"word{i * 7 % 13}x{i}"));

    public MpiCommandTests()
    {
        _model = Path.Combine(_dir, "tiny.gguf");
        SyntheticModel.WriteGguf(_model, Tiny, seed: 11);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Under mpirun the ranks see a terminal type and .NET writes terminal modes (and Spectre colours): the
    /// text without escape sequences.</summary>
    private static string Plain(string text) =>
        System.Text.RegularExpressions.Regex.Replace(text, @"\x1b(\[[0-9;?]*[A-Za-z]|[=>])", "");

    private string[] Generate(string memory, params string[] extra) =>
        [RepoPaths.CliDll, "generate", "--model", _model, "--prompt", _prompt, "--max-tokens", "24", "--temperature", "0",
            "--ignore-eos", "--kv-memory", memory, .. extra];

    private static Task<ProcessResult> MpiRun(int ranks, string[] command) =>
        ProcessRun.RunAsync("mpirun", ["-np", ranks.ToString(System.Globalization.CultureInfo.InvariantCulture), "--oversubscribe", "dotnet", .. command],
            RepoPaths.Root, TimeSpan.FromMinutes(3), MpiEnvironment);

    [Theory]
    [InlineData(2, "90KiB", 5)]
    [InlineData(4, "74KiB", 4)]
    public async Task Generate_over_ranks_gives_the_tokens_of_one_process_with_one_big_pool(int ranks, string rankMemory, int pages)
    {
        ProcessResult single = await ProcessRun.RunAsync("dotnet", Generate(SingleMemory), RepoPaths.Root, TimeSpan.FromMinutes(2));
        Assert.True(single.ExitCode == 0, single.Describe());
        ProcessResult spread = await MpiRun(ranks, Generate(rankMemory, "--mpi"));
        Assert.True(spread.ExitCode == 0, spread.Describe());
        Assert.Equal(single.Output, Plain(spread.Output));
        Assert.True(spread.Error.Contains($"over {ranks} instances of {pages} pages", StringComparison.Ordinal), spread.Describe());
        // The prompt does not fit rank 0's pool: rank 1 served steps (its KV took part in every layer's attention).
        Assert.Matches(@"MPI rank 1: [1-9]\d* steps served, shut down by rank 0", spread.Error);
    }

    [Fact]
    public async Task Sparse_attention_over_two_ranks_gives_the_tokens_of_two_in_process_instances()
    {
        // Streaming heads and page selection past a 128-token budget; both runs select pages every step.
        string[] sparse = ["--sparse", "--sparse-budget", "128"];
        ProcessResult inProcess = await ProcessRun.RunAsync("dotnet", Generate("180KiB", [.. sparse, "--instances", "2"]),
            RepoPaths.Root, TimeSpan.FromMinutes(2));
        Assert.True(inProcess.ExitCode == 0, inProcess.Describe());
        ProcessResult spread = await MpiRun(2, Generate("90KiB", [.. sparse, "--mpi"]));
        Assert.True(spread.ExitCode == 0, spread.Describe());
        Assert.Equal(inProcess.Output, Plain(spread.Output));
        Assert.Matches(@"MPI rank 1: [1-9]\d* steps served", spread.Error);
    }

    [Fact]
    public async Task Without_the_big_pool_one_rank_refuses_the_prompt_clearly()
    {
        ProcessResult alone = await ProcessRun.RunAsync("dotnet", Generate(RankMemory), RepoPaths.Root, TimeSpan.FromMinutes(2));
        Assert.Equal(1, alone.ExitCode);
        Assert.Contains("error:", alone.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Mpi_flag_conflicts_are_one_error_line()
    {
        ProcessResult both = await ProcessRun.RunAsync("dotnet", Generate(RankMemory, "--mpi", "--instances", "2"),
            RepoPaths.Root, TimeSpan.FromMinutes(1));
        Assert.Equal(1, both.ExitCode);
        Assert.Contains("--mpi runs one instance per rank", both.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Serve_over_two_ranks_answers_a_completion_like_one_process()
    {
        ProcessResult single = await ProcessRun.RunAsync("dotnet", Generate(SingleMemory), RepoPaths.Root, TimeSpan.FromMinutes(2));
        Assert.True(single.ExitCode == 0, single.Describe());
        string expected = single.Output.TrimEnd('\n', '\r');

        using var process = new System.Diagnostics.Process
        {
            StartInfo = ProcessRun.StartInfo("mpirun", ["-np", "3", "--oversubscribe", "dotnet", RepoPaths.CliDll, "serve", "--mpi",
                "--model", _model, "--model-id", "tiny", "--port", "0", "--kv-memory", RankMemory], RepoPaths.Root, MpiEnvironment),
        };
        var log = new System.Text.StringBuilder();
        var url = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnLine(string? line)
        {
            if (line is null) return;
            lock (log) log.AppendLine(line);
            string plain = Plain(line);
            var match = System.Text.RegularExpressions.Regex.Match(plain, @"listening\s+(http://[^\s│]+)");
            if (match.Success) url.TrySetResult(match.Groups[1].Value);
        }
        process.OutputDataReceived += (_, e) => OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            string baseUrl = await url.Task.WaitAsync(TimeSpan.FromMinutes(2));
            using var http = new HttpClient { BaseAddress = new Uri(baseUrl), Timeout = TimeSpan.FromMinutes(1) };
            using HttpResponseMessage response = await http.PostAsJsonAsync("/v1/completions", new
            {
                model = "tiny", prompt = _prompt, max_tokens = 24, temperature = 0, ignore_eos = true,
            });
            string body = await response.Content.ReadAsStringAsync();
            Assert.True(response.IsSuccessStatusCode, body + "\n" + log);
            string text = JsonDocument.Parse(body).RootElement.GetProperty("choices")[0].GetProperty("text").GetString()!;
            Assert.Equal(expected, text);
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
    }
}
