using System.Globalization;
using System.Text.RegularExpressions;

namespace Infinite.Server.Tests;

/// <summary>A strict reader of the Prometheus text exposition format 0.0.4, enough to reject what a scraper would:
/// bad names or labels, samples without a TYPE, a family split apart, histogram buckets that are not cumulative or
/// do not end at +Inf == _count.</summary>
internal static partial class PrometheusText
{
    [GeneratedRegex("""^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$""")]
    private static partial Regex Comment();

    [GeneratedRegex("""^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")*)?\})? (\S+)$""")]
    private static partial Regex SampleLine();

    [GeneratedRegex(@"([a-zA-Z_][a-zA-Z0-9_]*)=""((?:[^""\\]|\\.)*)""")]
    private static partial Regex Label();

    public sealed record Sample(string Name, IReadOnlyDictionary<string, string> Labels, double Value);

    /// <summary>Parses and validates <paramref name="text"/>; returns the samples.</summary>
    public static List<Sample> Parse(string text)
    {
        Assert.EndsWith("\n", text);
        var types = new Dictionary<string, string>();
        var finished = new HashSet<string>();
        string? current = null;
        var samples = new List<Sample>();
        foreach (string line in text[..^1].Split('\n'))
        {
            Match comment = Comment().Match(line);
            if (comment.Success)
            {
                string family = comment.Groups[2].Value;
                if (comment.Groups[1].Value == "TYPE")
                {
                    Assert.Contains(comment.Groups[3].Value, new[] { "counter", "gauge", "histogram", "summary", "untyped" });
                    Assert.True(types.TryAdd(family, comment.Groups[3].Value), $"second TYPE for {family}");
                }
                if (current != family)
                {
                    if (current is not null)
                        finished.Add(current);
                    Assert.DoesNotContain(family, finished);
                    current = family;
                }
                continue;
            }
            Match m = SampleLine().Match(line);
            Assert.True(m.Success, $"not a valid sample line: '{line}'");
            string name = m.Groups[1].Value;
            string familyName = FamilyOf(name, types);
            Assert.True(types.ContainsKey(familyName), $"sample {name} has no TYPE line before it");
            Assert.Equal(current, familyName);
            var labels = Label().Matches(m.Groups[2].Value).ToDictionary(l => l.Groups[1].Value, l => l.Groups[2].Value);
            string raw = m.Groups[3].Value;
            double value = raw switch
            {
                "+Inf" => double.PositiveInfinity,
                "-Inf" => double.NegativeInfinity,
                "NaN" => double.NaN,
                _ => double.Parse(raw, NumberStyles.Float, CultureInfo.InvariantCulture),
            };
            samples.Add(new Sample(name, labels, value));
        }
        foreach (var (family, type) in types.Where(t => t.Value == "histogram"))
            CheckHistogram(family, samples);
        return samples;
    }

    private static string FamilyOf(string name, Dictionary<string, string> types)
    {
        foreach (string suffix in new[] { "_bucket", "_sum", "_count" })
        {
            if (name.EndsWith(suffix, StringComparison.Ordinal) && types.GetValueOrDefault(name[..^suffix.Length]) == "histogram")
                return name[..^suffix.Length];
        }
        return name;
    }

    private static void CheckHistogram(string family, List<Sample> samples)
    {
        static string Key(Sample s) => string.Join(",", s.Labels.Where(l => l.Key != "le").OrderBy(l => l.Key).Select(l => $"{l.Key}={l.Value}"));
        foreach (var series in samples.Where(s => s.Name == family + "_bucket").GroupBy(Key))
        {
            double previousLe = double.NegativeInfinity, previousCount = 0;
            foreach (Sample bucket in series)
            {
                double le = bucket.Labels["le"] == "+Inf" ? double.PositiveInfinity : double.Parse(bucket.Labels["le"], CultureInfo.InvariantCulture);
                Assert.True(le > previousLe, $"{family} buckets not in increasing le order");
                Assert.True(bucket.Value >= previousCount, $"{family} buckets not cumulative");
                previousLe = le;
                previousCount = bucket.Value;
            }
            Assert.Equal(double.PositiveInfinity, previousLe);
            Sample count = Assert.Single(samples, s => s.Name == family + "_count" && Key(s) == series.Key);
            Assert.Equal(previousCount, count.Value);
            Assert.Single(samples, s => s.Name == family + "_sum" && Key(s) == series.Key);
        }
    }
}
