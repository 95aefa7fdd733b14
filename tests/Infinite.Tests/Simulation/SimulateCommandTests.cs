using Infinite.Cli;
using System.CommandLine;

namespace Infinite.Tests.Simulation;

/// <summary><c>infinite simulate</c> end to end, output captured.</summary>
public sealed class SimulateCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("infinite-simulate-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static (int Code, string Output, string Error) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = CliApp.CreateRoot().Parse(args).Invoke(new InvocationConfiguration { Output = output, Error = error });
        return (code, output.ToString(), error.ToString());
    }

    [Fact]
    public void Simulate_prints_a_table_per_policy()
    {
        var run = Run("simulate", "--model", "7b", "--gpus", "8", "--requests", "20", "--rate", "4", "--policy", "static,borrowing");
        Assert.True(run.Code == 0, run.Error);
        Assert.Contains("7b x8 short", run.Output);
        Assert.Contains("static", run.Output);
        Assert.Contains("borrowing", run.Output);
        Assert.Contains("simulating 7b on 8 x a100", run.Error);
    }

    [Fact]
    public void Simulate_accepts_the_ideal_bound_and_lists_it_beside_the_others()
    {
        var run = Run("simulate", "--model", "7b", "--gpus", "8", "--requests", "20", "--policy", "ideal");
        Assert.True(run.Code == 0, run.Error);
        string[] rows = [.. run.Output.Split('\n').Where(l => l.Contains("7b x8 short", StringComparison.Ordinal))];
        Assert.Single(rows);
        Assert.Contains("ideal", rows[0]);
        Assert.Contains("1x8", rows[0]); // one pooled instance over the 8 GPUs

        var all = Run("simulate", "--model", "7b", "--gpus", "8", "--requests", "20", "--policy", "all");
        Assert.True(all.Code == 0, all.Error);
        Assert.Contains("vs ideal", all.Output);
        Assert.Equal(5, all.Output.Split('\n').Count(l => l.Contains("7b x8 short", StringComparison.Ordinal)));
        Assert.Contains(all.Output.Split('\n'), l => l.Contains("ideal", StringComparison.Ordinal) && l.Contains("1.00x", StringComparison.Ordinal));
    }

    [Fact]
    public void Simulate_accepts_the_ideal_instances_bound()
    {
        var run = Run("simulate", "--model", "7b", "--gpus", "8", "--requests", "20", "--policy", "static,ideal-instances");
        Assert.True(run.Code == 0, run.Error);
        string[] rows = [.. run.Output.Split('\n').Where(l => l.Contains("7b x8 short", StringComparison.Ordinal))];
        Assert.Equal(2, rows.Length);
        Assert.Contains("ideal-instances", rows[1]);
        Assert.Contains("1x8", rows[1]); // the 8 instances pooled into one
        Assert.Contains("vs ideal-inst", run.Output);
    }

    [Fact]
    public void Simulate_replays_a_trace_and_writes_a_report()
    {
        string trace = Path.Combine(_dir, "t.csv");
        File.WriteAllText(trace, "arrival_seconds,prompt_tokens,output_tokens\n0,1000,20\n0.5,150000,5\n1,4000,30\n");
        string report = Path.Combine(_dir, "report");
        var run = Run("simulate", "--trace", trace, "--gpus", "4", "--policy", "all", "--report", report);
        Assert.True(run.Code == 0, run.Error);
        Assert.True(File.Exists(Path.Combine(report, "report.md")));
        Assert.True(File.Exists(Path.Combine(report, "throughput.svg")));
        Assert.Contains("report:", run.Output);
        string md = File.ReadAllText(Path.Combine(report, "report.md"));
        Assert.Contains("Dispatch: static arrival; borrowing arrival; single global; ideal global; ideal-instances global", md); // one instance: one queue
        Assert.Contains("| ideal |", md);
        Assert.Contains("| ideal-instances |", md);
        Assert.Contains("| vs ideal-instances |", md);
        Assert.Contains("dispatch arrival", run.Error);

        var global = Run("simulate", "--trace", trace, "--gpus", "4", "--policy", "static", "--dispatch", "global");
        Assert.True(global.Code == 0, global.Error);
        Assert.Contains("dispatch global", global.Error);
    }

    [Theory]
    [InlineData("--model", "8b", "Unknown model '8b'")]
    [InlineData("--device", "tpu", "Unknown device 'tpu'")]
    [InlineData("--policy", "fair", "Unknown policy 'fair'")]
    [InlineData("--gpus", "0", "--gpus: '0' is not a positive whole number")]
    [InlineData("--workload", "medium", "Unknown workload 'medium'")]
    [InlineData("--plan-every", "0", "Plans need at least one step between them")]
    [InlineData("--lending-cap", "1.5", "The lending cap is a fraction in [0, 1]")]
    [InlineData("--dispatch", "fifo", "Unknown dispatch 'fifo'")]
    [InlineData("--borrow-placement", "random", "--borrow-placement: unknown 'random'")]
    public void Bad_options_give_one_error_line_and_exit_code_1(string option, string value, string message)
    {
        var run = Run("simulate", option, value, "--requests", "5");
        Assert.Equal(1, run.Code);
        Assert.StartsWith("error: ", run.Error.Trim().Split('\n')[^1]);
        Assert.Contains(message, run.Error);
    }

    [Fact]
    public void A_malformed_trace_names_its_line_and_column()
    {
        string trace = Path.Combine(_dir, "bad.csv");
        File.WriteAllText(trace, "arrival_seconds,prompt_tokens,output_tokens\n0,10,5\n1,ten,5\n");
        var run = Run("simulate", "--trace", trace);
        Assert.Equal(1, run.Code);
        Assert.Contains("bad.csv:3:2: prompt_tokens must be a whole number", run.Error);
    }
}
