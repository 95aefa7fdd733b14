using System.Globalization;
using System.Text;

namespace Infinite.Simulation;

/// <summary>
/// Writes a simulation report: <c>report.md</c> with the setup and one table row per scenario and policy
/// (throughput, ratios to the baselines and to the ideal-instances and ideal bounds, TTFT and TPOT p50/p99, largest
/// context served, KV utilisation), and SVG charts beside it that the markdown embeds: throughput, TTFT p99, TPOT
/// p50 and largest context per scenario and policy, and KV utilisation over time for each scenario.
/// </summary>
public static class ReportWriter
{
    /// <summary>Writes the report into <paramref name="directory"/> (created when missing); returns the files written.</summary>
    public static IReadOnlyList<string> Write(string directory, IReadOnlyList<Scenario> scenarios, string commandLine)
    {
        ArgumentNullException.ThrowIfNull(directory);
        ArgumentNullException.ThrowIfNull(scenarios);
        if (scenarios.Count == 0 || scenarios.Any(s => s.Results.Count == 0))
            throw new ArgumentException("A report needs at least one scenario with results.", nameof(scenarios));
        Directory.CreateDirectory(directory);
        var files = new List<string>();
        string[] policies = [.. scenarios.SelectMany(s => s.Results.Select(r => r.Policy)).Distinct()];
        string[] labels = [.. scenarios.Select(s => $"{s.Label} {s.Workload}")];

        void Chart(string name, System.Xml.Linq.XDocument doc)
        {
            string path = Path.Combine(directory, name);
            SvgChart.Save(doc, path);
            files.Add(path);
        }

        SvgChart.Series[] Per(Func<SimulationResult, double> f) =>
            [.. policies.Select(p => new SvgChart.Series(p, [.. scenarios.Select(s => s.Of(p) is { } r ? f(r) : double.NaN)]))];

        Chart("throughput.svg", SvgChart.Bars("Throughput (served output tokens/s)", "tokens/s", labels, Per(r => r.Throughput)));
        Chart("ttft_p99.svg", SvgChart.Bars("Time to first token, p99", "seconds", labels, Per(r => r.TtftP99)));
        Chart("tpot_p50.svg", SvgChart.Bars("Time per output token, p50", "seconds", labels, Per(r => r.TpotP50)));
        Chart("largest_context.svg", SvgChart.Bars("Largest context served", "tokens (log scale)", labels, Per(r => r.LargestContextServed), logScale: true));
        for (int k = 0; k < scenarios.Count; k++)
        {
            Scenario s = scenarios[k];
            SvgChart.Series[] lines = [.. s.Results.Select(r => new SvgChart.Series(r.Policy,
                [.. r.Utilisation.Select(u => u.KvUtilisation * 100)], [.. r.Utilisation.Select(u => u.Seconds)]))];
            Chart(UtilisationFile(k, s), SvgChart.Lines($"KV memory in use: {s.Label} {s.Workload}", "simulated seconds", "% of KV pages", lines, 100));
        }

        var md = new StringBuilder();
        md.AppendLine("# Cluster simulation report").AppendLine();
        md.AppendLine(Invariant($"Command: `{commandLine}`")).AppendLine();
        SimulationResult first = scenarios[0].Results[0];
        ClusterLayout l = first.Layout;
        md.AppendLine(Invariant($"Device: {l.Device.Description}; interconnect: {l.Interconnect.GpusPerNode} GPUs per node, NVLink {l.Interconnect.IntraNode.Bandwidth / 1e9:0} GB/s + {l.Interconnect.IntraNode.LatencySeconds * 1e6:0.#} us, InfiniBand {l.Interconnect.InterNode.Bandwidth / 1e9:0} GB/s + {l.Interconnect.InterNode.LatencySeconds * 1e6:0.#} us per GPU and direction; pages of {l.PageTokens} tokens."))
            .AppendLine();
        md.AppendLine("Policies: " + string.Join("; ", scenarios[0].Results.Select(r => $"**{r.Policy}**"))).AppendLine();
        md.AppendLine("Dispatch: " + string.Join("; ", scenarios[0].Results.Select(r => $"{r.Policy} {DispatchModes.Name(r.Dispatch)}"))
            + " (arrival: a balancer picks the instance on arrival, per-instance queues; global: one queue, late binding).").AppendLine();
        md.AppendLine("| scenario | policy | instances x GPUs | KV tokens / instance | served / rejected | throughput (output tok/s) | all tok/s | vs static | vs single | vs ideal-instances | vs ideal | TTFT p50 / p99 (s) | TPOT p50 / p99 (ms) | largest context | mean KV use | preemptions | pages migrated |");
        md.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (Scenario s in scenarios)
        {
            foreach (SimulationResult r in s.Results)
            {
                md.AppendLine(Invariant(
                    $"| {s.Label} {s.Workload} | {r.Policy} | {r.Instances} x {r.Layout.GpusPerInstance} | {SvgChart.Format(r.Layout.TokensPerInstance)} | {r.Served} / {r.Rejected} | {r.Throughput:0.0} | {r.TokenThroughput:0} | {RatioText(s, r.Policy, "static")} | {RatioText(s, r.Policy, "single")} | {RatioText(s, r.Policy, "ideal-instances")} | {RatioText(s, r.Policy, "ideal")} | {r.TtftP50:0.00} / {r.TtftP99:0.00} | {r.TpotP50 * 1e3:0.0} / {r.TpotP99 * 1e3:0.0} | {SvgChart.Format(r.LargestContextServed)} | {r.MeanKvUtilisation * 100:0}% | {r.Preemptions} | {r.PagesMigrated} |"));
            }
        }
        md.AppendLine();
        foreach (Scenario s in scenarios)
        {
            foreach (SimulationResult r in s.Results.Where(r => r.Rejected > 0))
                md.AppendLine(Invariant($"- {s.Label} {s.Workload}, {r.Policy}: {r.Rejected} rejected, e.g. \"{r.TopRejectReason}\"."));
        }
        md.AppendLine();
        md.AppendLine("![throughput](throughput.svg)").AppendLine();
        md.AppendLine("![TTFT p99](ttft_p99.svg)").AppendLine();
        md.AppendLine("![TPOT p50](tpot_p50.svg)").AppendLine();
        md.AppendLine("![largest context](largest_context.svg)").AppendLine();
        for (int k = 0; k < scenarios.Count; k++)
            md.AppendLine(Invariant($"![KV use {scenarios[k].Label}]({UtilisationFile(k, scenarios[k])})")).AppendLine();
        md.AppendLine("Throughput = served output tokens / makespan (time 0 to the last completion); all tok/s counts the prompt and output tokens of served requests over the same makespan; rejected requests earn nothing. TTFT = first token - arrival; TPOT = (completion - first token) / (output tokens - 1).");
        string report = Path.Combine(directory, "report.md");
        File.WriteAllText(report, md.ToString(), new UTF8Encoding(false));
        files.Insert(0, report);
        return files;
    }

    private static string UtilisationFile(int k, Scenario s) => $"kv_use_{k + 1}_{s.Model}_{s.Gpus}_{s.Workload}.svg";

    private static string RatioText(Scenario s, string policy, string baseline)
    {
        if (policy == baseline)
            return "1.00x";
        double ratio = s.Ratio(policy, baseline);
        return double.IsFinite(ratio) ? Invariant($"{ratio:0.00}x") : "-";
    }

    private static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
