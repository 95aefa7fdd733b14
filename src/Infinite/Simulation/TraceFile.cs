using System.Globalization;
using System.Text;

namespace Infinite.Simulation;

/// <summary>
/// The trace file format: CSV with the header <c>arrival_seconds,prompt_tokens,output_tokens</c>, one request per
/// line, arrival times non-decreasing. Blank lines and lines starting with <c>#</c> are skipped, so real traces can
/// carry a note of where they came from. Numbers use the invariant culture ('.' decimal point).
/// </summary>
public static class TraceFile
{
    public const string Header = "arrival_seconds,prompt_tokens,output_tokens";

    /// <summary>Reads a trace file.</summary>
    /// <exception cref="TraceFormatException">A malformed line (with line and column).</exception>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    public static IReadOnlyList<WorkloadRequest> Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        using var reader = new StreamReader(path, Encoding.UTF8);
        return Read(reader, path);
    }

    /// <summary>Reads trace text; <paramref name="source"/> names it in errors.</summary>
    public static IReadOnlyList<WorkloadRequest> Read(TextReader reader, string source = "trace")
    {
        ArgumentNullException.ThrowIfNull(reader);
        var requests = new List<WorkloadRequest>();
        bool sawHeader = false;
        int lineNumber = 0;
        double last = 0;
        while (reader.ReadLine() is { } line)
        {
            lineNumber++;
            string text = line.Trim();
            if (text.Length == 0 || text[0] == '#')
                continue;
            if (!sawHeader)
            {
                if (!string.Equals(text.Replace(" ", "", StringComparison.Ordinal), Header, StringComparison.OrdinalIgnoreCase))
                    throw new TraceFormatException(source, lineNumber, 1, $"expected the header '{Header}', got '{Shorten(text)}'");
                sawHeader = true;
                continue;
            }
            string[] fields = text.Split(',');
            if (fields.Length != 3)
            {
                int column = Math.Min(fields.Length, 3) + 1;
                throw new TraceFormatException(source, lineNumber, Math.Min(column, 4),
                    $"expected 3 fields (arrival_seconds,prompt_tokens,output_tokens), got {fields.Length}");
            }
            if (!double.TryParse(fields[0].Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double arrival)
                || !double.IsFinite(arrival) || arrival < 0)
                throw new TraceFormatException(source, lineNumber, 1, $"arrival_seconds must be a number >= 0, got '{Shorten(fields[0].Trim())}'");
            if (arrival < last)
                throw new TraceFormatException(source, lineNumber, 1,
                    string.Create(CultureInfo.InvariantCulture, $"arrival_seconds must not decrease ({arrival} after {last})"));
            last = arrival;
            int prompt = ParseCount(fields[1], source, lineNumber, 2, "prompt_tokens");
            int output = ParseCount(fields[2], source, lineNumber, 3, "output_tokens");
            requests.Add(new WorkloadRequest(arrival, prompt, output));
        }
        if (!sawHeader)
            throw new TraceFormatException(source, Math.Max(1, lineNumber), 1, $"empty trace: expected the header '{Header}'");
        return requests;
    }

    /// <summary>Writes a trace (round-trips exactly: arrival times in the shortest form that parses back equal).</summary>
    public static void Write(TextWriter writer, IEnumerable<WorkloadRequest> requests)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(requests);
        writer.WriteLine(Header);
        foreach (WorkloadRequest r in requests)
            writer.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{r.ArrivalSeconds:R},{r.PromptTokens},{r.OutputTokens}"));
    }

    /// <summary>Writes a trace file.</summary>
    public static void Write(string path, IEnumerable<WorkloadRequest> requests)
    {
        ArgumentNullException.ThrowIfNull(path);
        using var writer = new StreamWriter(path, append: false, new UTF8Encoding(false));
        Write(writer, requests);
    }

    private static int ParseCount(string field, string source, int line, int column, string name)
    {
        string text = field.Trim();
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int value) || value < 1)
            throw new TraceFormatException(source, line, column, $"{name} must be a whole number >= 1, got '{Shorten(text)}'");
        return value;
    }

    private static string Shorten(string s) => s.Length <= 40 ? s : s[..37] + "...";
}
