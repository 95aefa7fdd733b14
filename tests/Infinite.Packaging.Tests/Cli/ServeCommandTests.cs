using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using Infinite.Models;
using Infinite.Packaging.Tests.Support;

namespace Infinite.Packaging.Tests.Cli;

/// <summary>`infinite serve` as a user runs it: a separate process, real HTTP, Ctrl+C (SIGINT) to stop.</summary>
public sealed partial class ServeCommandTests : IDisposable
{
    private static readonly LlamaConfig Tiny = SyntheticModel.DemoConfig with
    {
        Dim = 64, Layers = 2, QHeads = 4, KvHeads = 2, HeadDim = 16, FfnDim = 96, VocabSize = 300, ContextLength = 2048,
    };

    private readonly string _dir = Directory.CreateTempSubdirectory("infinite-serve-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static Task<ProcessResult> Serve(params string[] args) =>
        ProcessRun.RunAsync("dotnet", [RepoPaths.CliDll, "serve", .. args], RepoPaths.Root, TimeSpan.FromMinutes(1));

    [Fact]
    public async Task Serves_a_model_over_http_and_exits_0_on_ctrl_c_after_draining()
    {
        string model = Path.Combine(_dir, "tiny.gguf");
        SyntheticModel.WriteGguf(model, Tiny, seed: 7);
        await ServeAndStop(["--model", model, "--model-id", "tiny", "--port", "0", "--kv-memory", "32MiB", "--max-running", "4"],
            "tiny", banner => Assert.DoesNotContain("RANDOM", banner, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Serves_the_demo_model_without_a_model_flag_and_says_its_weights_are_random()
    {
        await ServeAndStop(["--port", "0", "--kv-memory", "32MiB"], "infinite-demo-12m-f32-seed1.gguf",
            banner => Assert.Contains("RANDOM weights: its text is gibberish", banner, StringComparison.Ordinal));
    }

    private static async Task ServeAndStop(string[] args, string modelId, Action<string> checkBanner)
    {
        using var process = new Process
        {
            StartInfo = ProcessRun.StartInfo("dotnet", [RepoPaths.CliDll, "serve", .. args], RepoPaths.Root),
        };
        var output = new System.Text.StringBuilder();
        var error = new System.Text.StringBuilder();
        var listening = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (output) output.AppendLine(e.Data);
            if (e.Data.Contains("Ctrl+C", StringComparison.Ordinal))
            {
                string text;
                lock (output) text = output.ToString();
                listening.TrySetResult(text);
            }
        };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (error) error.AppendLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            Task exited = process.WaitForExitAsync();
            Task first = await Task.WhenAny(listening.Task, exited, Task.Delay(TimeSpan.FromMinutes(1)));
            Assert.True(first == listening.Task, $"no banner; stdout:\n{output}\nstderr:\n{error}");
            string banner = await listening.Task;
            checkBanner(banner);
            Match url = ListeningUrl().Match(banner);
            Assert.True(url.Success, banner);
            Assert.Contains("KV cache", banner, StringComparison.Ordinal);
            Assert.Contains("uploading weights (cpu): done", banner, StringComparison.Ordinal);

            using var http = new HttpClient { BaseAddress = new Uri(url.Groups[1].Value), Timeout = TimeSpan.FromSeconds(60) };
            using JsonDocument models = JsonDocument.Parse(await http.GetStringAsync(new Uri("/v1/models", UriKind.Relative)));
            Assert.Equal(modelId, models.RootElement.GetProperty("data")[0].GetProperty("id").GetString());
            using HttpResponseMessage completion = await http.PostAsJsonAsync(new Uri("/v1/completions", UriKind.Relative),
                new { model = modelId, prompt = "Hello", max_tokens = 4, temperature = 0, ignore_eos = true });
            string body = await completion.Content.ReadAsStringAsync();
            Assert.True(completion.IsSuccessStatusCode, body);
            using JsonDocument json = JsonDocument.Parse(body);
            Assert.Equal(4, json.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32());

            await Interrupt(process.Id);
            Task stopped = await Task.WhenAny(exited, Task.Delay(TimeSpan.FromSeconds(30)));
            Assert.True(stopped == exited, $"still running 30 s after SIGINT; stdout:\n{output}");
            await process.WaitForExitAsync(); // drains the output readers
            Assert.True(process.ExitCode == 0, $"exit {process.ExitCode}; stdout:\n{output}\nstderr:\n{error}");
            Assert.Contains("stopped", output.ToString(), StringComparison.Ordinal);
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }
    }

    /// <summary>What Ctrl+C sends.</summary>
    private static async Task Interrupt(int pid)
    {
        ProcessResult kill = await ProcessRun.RunAsync("kill", ["-INT", pid.ToString(System.Globalization.CultureInfo.InvariantCulture)],
            RepoPaths.Root, TimeSpan.FromSeconds(10));
        Assert.True(kill.ExitCode == 0, kill.Describe());
    }

    [Theory]
    [InlineData("--port", "70000", "--port 70000 is out of range")]
    [InlineData("--max-running", "0", "--max-running must be at least 1")]
    [InlineData("--kv-type", "f8", "--kv-type 'f8'")]
    [InlineData("--kv-memory", "lots", "'lots' is not a size")]
    [InlineData("--host", "bad host", "--host 'bad host'")]
    [InlineData("--device", "tpu", "unknown device 'tpu'")]
    public async Task A_bad_flag_value_is_one_clear_line_and_exit_code_1(string flag, string value, string message)
    {
        ProcessResult run = await Serve(flag, value);
        Assert.True(run.ExitCode == 1, run.Describe());
        Assert.Contains(message, run.Error, StringComparison.Ordinal);
        AssertNoStackTrace(run);
    }

    [Fact]
    public async Task A_value_of_the_wrong_type_is_a_parse_error_with_exit_code_1()
    {
        ProcessResult run = await Serve("--port", "eighty");
        Assert.True(run.ExitCode == 1, run.Describe());
        Assert.Contains("eighty", run.Error, StringComparison.Ordinal);
        AssertNoStackTrace(run);
    }

    [Fact]
    public async Task A_missing_model_is_named_and_exits_1()
    {
        string missing = Path.Combine(_dir, "missing.gguf");
        ProcessResult run = await Serve("--model", missing, "--port", "0");
        Assert.True(run.ExitCode == 1, run.Describe());
        Assert.Contains(missing, run.Error, StringComparison.Ordinal);
        AssertNoStackTrace(run);
    }

    [Fact]
    public async Task A_port_in_use_is_reported_after_the_load_with_exit_code_1()
    {
        string model = Path.Combine(_dir, "tiny.gguf");
        SyntheticModel.WriteGguf(model, Tiny, seed: 8);
        using var taken = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        taken.Start();
        int port = ((System.Net.IPEndPoint)taken.LocalEndpoint).Port;
        ProcessResult run = await Serve("--model", model, "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--kv-memory", "32MiB");
        Assert.True(run.ExitCode == 1, run.Describe());
        Assert.Contains($"127.0.0.1:{port}", run.Error, StringComparison.Ordinal);
        Assert.Contains("error:", run.Error, StringComparison.Ordinal);
        AssertNoStackTrace(run);
    }

    private static void AssertNoStackTrace(ProcessResult run)
    {
        Assert.DoesNotContain("   at ", run.Output + run.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("Unhandled exception", run.Output + run.Error, StringComparison.Ordinal);
    }

    [GeneratedRegex(@"listening\s+(http://[^\s│]+)")]
    private static partial Regex ListeningUrl();
}
