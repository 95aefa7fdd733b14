using System.Xml.Linq;
using Infinite.Simulation;

namespace Infinite.Tests.Simulation;

public sealed class ReportWriterTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("infinite-sim-report-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void The_report_is_markdown_with_well_formed_svg_charts()
    {
        ClusterLayout layout = SimulationFixture.Layout();
        var options = new SimulationOptions();
        Scenario scenario = SimulationRunner.Run(layout, "short", SimulationFixture.Short(30), SimulationPolicies.Parse("all", options, 0.5), options);
        IReadOnlyList<string> files = ReportWriter.Write(_dir, [scenario], "infinite simulate --gpus 8");

        string report = File.ReadAllText(Path.Combine(_dir, "report.md"));
        Assert.Equal(Path.Combine(_dir, "report.md"), files[0]);
        Assert.Contains("| scenario | policy |", report);
        Assert.Contains("| 7b x8 short | borrowing |", report);
        Assert.Contains("| 7b x8 short | ideal | 1 x 8 |", report);
        Assert.Contains("| 7b x8 short | ideal-instances | 1 x 8 |", report);
        Assert.Contains("| vs ideal |", report);
        Assert.Contains("infinite simulate --gpus 8", report);
        string[] svgs = [.. files.Where(f => f.EndsWith(".svg", StringComparison.Ordinal))];
        Assert.True(svgs.Length >= 5);
        foreach (string svg in svgs)
        {
            XDocument doc = XDocument.Load(svg); // throws on malformed XML
            Assert.Equal(XName.Get("svg", "http://www.w3.org/2000/svg"), doc.Root!.Name);
            Assert.Contains($"]({Path.GetFileName(svg)})", report);
        }
        XDocument throughput = XDocument.Load(Path.Combine(_dir, "throughput.svg"));
        Assert.Equal(5, throughput.Descendants().Count(e => e.Name.LocalName == "rect" && e.Element(e.Name.Namespace + "title") is not null));
    }

    [Fact]
    public void Charts_escape_text_and_skip_missing_values()
    {
        XDocument bars = SvgChart.Bars("a < b & c", "y", ["x<1>"], [new SvgChart.Series("s&t", [double.NaN])]);
        XDocument parsed = XDocument.Parse(bars.ToString());
        Assert.Contains(parsed.Descendants(), e => e.Value == "a < b & c");
        XDocument lines = SvgChart.Lines("t", "x", "y", [new SvgChart.Series("u", [0.5, 1], [0, 10])], 1);
        Assert.Single(lines.Descendants(), e => e.Name.LocalName == "polyline");
        Assert.Throws<ArgumentException>(() => SvgChart.Lines("t", "x", "y", [new SvgChart.Series("u", [1])]));
    }
}
