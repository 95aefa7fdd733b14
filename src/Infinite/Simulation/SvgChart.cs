using System.Globalization;
using System.Xml.Linq;

namespace Infinite.Simulation;

/// <summary>
/// Minimal SVG charts for simulation reports (no plotting package is available, and a report should open in any
/// browser): grouped bar charts and line charts with axes, ticks, a title and a legend. Built with
/// <see cref="XElement"/> so the output is always well-formed XML.
/// </summary>
public static class SvgChart
{
    private static readonly XNamespace Svg = "http://www.w3.org/2000/svg";
    private static readonly string[] Palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"];
    private const double Width = 860, Height = 460, Left = 80, Right = 150, Top = 44, Bottom = 110;

    /// <summary>One named series of values (a bar per category, or a line of (x, y) points).</summary>
    public sealed record Series(string Name, IReadOnlyList<double> Values, IReadOnlyList<double>? X = null);

    /// <summary>A grouped bar chart: one group per category, one bar per series in each group. NaN bars are left
    /// out (a policy that served nothing has no TTFT). <paramref name="logScale"/> spaces the y axis by decades, for
    /// values that span orders of magnitude (largest context served: 55K next to 2M).</summary>
    public static XDocument Bars(string title, string yLabel, IReadOnlyList<string> categories, IReadOnlyList<Series> series,
        bool logScale = false)
    {
        ArgumentNullException.ThrowIfNull(categories);
        ArgumentNullException.ThrowIfNull(series);
        double[] finite = [.. series.SelectMany(s => s.Values).Where(v => double.IsFinite(v) && (!logScale || v > 0))];
        double max = finite.DefaultIfEmpty(0).Max();
        double top = logScale ? Math.Pow(10, Math.Ceiling(Math.Log10(Math.Max(max, 1)))) : NiceCeiling(max);
        double bottom = logScale ? Math.Pow(10, Math.Floor(Math.Log10(finite.DefaultIfEmpty(1).Min()))) : 0;
        if (logScale && bottom >= top)
            bottom = top / 10;
        XElement root = Frame(title, yLabel, "");
        if (logScale)
            AddLogYAxis(root, bottom, top);
        else
            AddYAxis(root, 0, top);
        double plotW = Width - Left - Right, plotH = Height - Top - Bottom;
        double groupW = plotW / Math.Max(1, categories.Count);
        double barW = groupW * 0.8 / Math.Max(1, series.Count);
        for (int c = 0; c < categories.Count; c++)
        {
            double gx = Left + c * groupW + groupW * 0.1;
            for (int s = 0; s < series.Count; s++)
            {
                double v = c < series[s].Values.Count ? series[s].Values[c] : double.NaN;
                if (!double.IsFinite(v) || (logScale && v <= 0))
                    continue;
                double h = logScale ? Math.Log10(v / bottom) / Math.Log10(top / bottom) * plotH
                    : top > 0 ? v / top * plotH : 0;
                root.Add(new XElement(Svg + "rect",
                    Attr("x", gx + s * barW), Attr("y", Top + plotH - h), Attr("width", barW * 0.92), Attr("height", h),
                    new XAttribute("fill", Color(s)),
                    new XElement(Svg + "title", $"{series[s].Name} {categories[c]}: {Format(v)}")));
                if (series.Count * categories.Count <= 30)
                    root.Add(Text(gx + s * barW + barW * 0.46, Top + plotH - h - 3, Label(v), "middle", series.Count * categories.Count > 12 ? 8 : 10));
            }
            // Category names slanted so that many groups still read; the end of each name sits under its group.
            double lx = gx + groupW * 0.4, ly = Height - Bottom + 14;
            XElement label = Text(lx, ly, categories[c], "end", 11);
            label.Add(new XAttribute("transform", $"rotate(-30 {Format(lx)} {Format(ly)})"));
            root.Add(label);
        }
        AddLegend(root, series.Select(s => s.Name).ToList());
        return new XDocument(root);
    }

    /// <summary>A line chart of (x, y) series sharing axes that start at 0.</summary>
    public static XDocument Lines(string title, string xLabel, string yLabel, IReadOnlyList<Series> series, double? yMax = null)
    {
        ArgumentNullException.ThrowIfNull(series);
        foreach (Series s in series)
        {
            if (s.X is null || s.X.Count != s.Values.Count)
                throw new ArgumentException($"Line series '{s.Name}' needs one x per value.", nameof(series));
        }
        double xMax = NiceCeiling(series.SelectMany(s => s.X!).Where(double.IsFinite).DefaultIfEmpty(0).Max());
        double yTop = yMax ?? NiceCeiling(series.SelectMany(s => s.Values).Where(double.IsFinite).DefaultIfEmpty(0).Max());
        XElement root = Frame(title, yLabel, xLabel);
        AddYAxis(root, 0, yTop);
        double plotW = Width - Left - Right, plotH = Height - Top - Bottom;
        for (int t = 0; t <= 5; t++)
        {
            double v = xMax * t / 5, x = Left + plotW * t / 5;
            root.Add(Line(x, Top + plotH, x, Top + plotH + 5, "#333"));
            root.Add(Text(x, Top + plotH + 18, Format(v), "middle", 11));
        }
        for (int s = 0; s < series.Count; s++)
        {
            var points = new System.Text.StringBuilder();
            for (int k = 0; k < series[s].Values.Count; k++)
            {
                double xv = series[s].X![k], yv = series[s].Values[k];
                if (!double.IsFinite(xv) || !double.IsFinite(yv))
                    continue;
                double x = Left + (xMax > 0 ? xv / xMax : 0) * plotW;
                double y = Top + plotH - (yTop > 0 ? Math.Min(yv, yTop) / yTop : 0) * plotH;
                points.Append(Format(x)).Append(',').Append(Format(y)).Append(' ');
            }
            root.Add(new XElement(Svg + "polyline", new XAttribute("points", points.ToString().TrimEnd()),
                new XAttribute("fill", "none"), new XAttribute("stroke", Color(s)), new XAttribute("stroke-width", "1.6")));
        }
        AddLegend(root, series.Select(s => s.Name).ToList());
        return new XDocument(root);
    }

    /// <summary>Writes a chart without a BOM (some viewers choke on one).</summary>
    public static void Save(XDocument chart, string path)
    {
        ArgumentNullException.ThrowIfNull(chart);
        using var stream = File.Create(path);
        using var writer = System.Xml.XmlWriter.Create(stream, new System.Xml.XmlWriterSettings
        {
            Encoding = new System.Text.UTF8Encoding(false),
            Indent = true,
        });
        chart.Save(writer);
    }

    private static XElement Frame(string title, string yLabel, string xLabel)
    {
        var root = new XElement(Svg + "svg",
            new XAttribute("width", Width), new XAttribute("height", Height),
            new XAttribute("viewBox", $"0 0 {Width} {Height}"),
            new XAttribute("font-family", "sans-serif"));
        root.Add(new XElement(Svg + "rect", Attr("x", 0), Attr("y", 0), Attr("width", Width), Attr("height", Height), new XAttribute("fill", "white")));
        root.Add(Text(Width / 2, 24, title, "middle", 15, bold: true));
        root.Add(Line(Left, Top, Left, Height - Bottom, "#333"));
        root.Add(Line(Left, Height - Bottom, Width - Right, Height - Bottom, "#333"));
        XElement y = Text(18, Top + (Height - Top - Bottom) / 2, yLabel, "middle", 12);
        y.Add(new XAttribute("transform", $"rotate(-90 18 {Format(Top + (Height - Top - Bottom) / 2)})"));
        root.Add(y);
        if (xLabel.Length > 0)
            root.Add(Text(Left + (Width - Left - Right) / 2, Height - Bottom + 40, xLabel, "middle", 12));
        return root;
    }

    private static void AddYAxis(XElement root, double min, double max)
    {
        double plotH = Height - Top - Bottom;
        for (int t = 0; t <= 5; t++)
        {
            double v = min + (max - min) * t / 5, y = Top + plotH - plotH * t / 5;
            root.Add(Line(Left - 5, y, Width - Right, y, t == 0 ? "#333" : "#e5e5e5"));
            root.Add(Text(Left - 8, y + 4, Format(v), "end", 11));
        }
    }

    private static void AddLogYAxis(XElement root, double bottom, double top)
    {
        double plotH = Height - Top - Bottom;
        int decades = (int)Math.Round(Math.Log10(top / bottom));
        for (int t = 0; t <= decades; t++)
        {
            double v = bottom * Math.Pow(10, t), y = Top + plotH - plotH * t / Math.Max(1, decades);
            root.Add(Line(Left - 5, y, Width - Right, y, t == 0 ? "#333" : "#e5e5e5"));
            root.Add(Text(Left - 8, y + 4, Format(v), "end", 11));
        }
    }

    private static void AddLegend(XElement root, IReadOnlyList<string> names)
    {
        for (int s = 0; s < names.Count; s++)
        {
            double y = Top + 10 + s * 20;
            root.Add(new XElement(Svg + "rect", Attr("x", Width - Right + 14), Attr("y", y - 9), Attr("width", 12), Attr("height", 12),
                new XAttribute("fill", Color(s))));
            root.Add(Text(Width - Right + 32, y + 1, names[s], "start", 12));
        }
    }

    private static XElement Line(double x1, double y1, double x2, double y2, string color) =>
        new(Svg + "line", Attr("x1", x1), Attr("y1", y1), Attr("x2", x2), Attr("y2", y2), new XAttribute("stroke", color));

    private static XElement Text(double x, double y, string text, string anchor, int size, bool bold = false)
    {
        var e = new XElement(Svg + "text", Attr("x", x), Attr("y", y), new XAttribute("text-anchor", anchor),
            new XAttribute("font-size", size), text);
        if (bold)
            e.Add(new XAttribute("font-weight", "bold"));
        return e;
    }

    private static XAttribute Attr(string name, double value) => new(name, Format(value));

    private static string Color(int s) => Palette[s % Palette.Length];

    /// <summary>Compact number: 1234567 -> 1.23M, 0.0123 -> 0.0123.</summary>
    internal static string Format(double v)
    {
        double a = Math.Abs(v);
        return a >= 1e6 ? (v / 1e6).ToString("0.##", CultureInfo.InvariantCulture) + "M"
            : a >= 1e4 ? (v / 1e3).ToString("0.#", CultureInfo.InvariantCulture) + "K"
            : a >= 100 || a == 0 ? v.ToString("0.#", CultureInfo.InvariantCulture)
            : v.ToString("0.###", CultureInfo.InvariantCulture);
    }

    /// <summary>Short bar label: three significant digits at most (2258.3 -> 2.26K, 130.8 -> 131).</summary>
    internal static string Label(double v)
    {
        double a = Math.Abs(v);
        return a >= 1e6 ? (v / 1e6).ToString("0.##", CultureInfo.InvariantCulture) + "M"
            : a >= 1e3 ? (v / 1e3).ToString(a >= 1e5 ? "0" : a >= 1e4 ? "0.#" : "0.##", CultureInfo.InvariantCulture) + "K"
            : a >= 100 ? v.ToString("0", CultureInfo.InvariantCulture)
            : v.ToString(a >= 10 ? "0.#" : "0.##", CultureInfo.InvariantCulture);
    }

    /// <summary>The smallest of 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 x 10^k at or above <paramref name="v"/> (1 for 0):
    /// an axis end with round fifths that wastes little of the plot.</summary>
    internal static double NiceCeiling(double v)
    {
        if (!(v > 0))
            return 1;
        double p = Math.Pow(10, Math.Floor(Math.Log10(v)));
        foreach (double m in (double[])[1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10])
        {
            if (m * p >= v * (1 - 1e-12))
                return m * p;
        }
        return 10 * p;
    }
}
