namespace Infinite.Bindings.Generator;

/// <summary>Turns a raw C comment (<c>/* */</c>, <c>/** */</c>, <c>//</c>, <c>///</c>) into its text.</summary>
internal static class DocComment
{
    /// <summary>The comment's lines without markers or leading '*'; null when there is no text.</summary>
    public static string? Clean(string raw)
    {
        var lines = raw.Replace("\r", "", StringComparison.Ordinal).Split('\n').Select(CleanLine).ToList();
        while (lines.Count > 0 && lines[0].Length == 0) lines.RemoveAt(0);
        while (lines.Count > 0 && lines[^1].Length == 0) lines.RemoveAt(lines.Count - 1);
        return lines.Count == 0 ? null : string.Join('\n', lines);
    }

    private static string CleanLine(string line)
    {
        line = line.Trim();
        foreach (var opener in new[] { "///", "//", "/**", "/*!", "/*" })
        {
            if (line.StartsWith(opener, StringComparison.Ordinal))
            {
                line = line[opener.Length..];
                break;
            }
        }
        if (line.EndsWith("*/", StringComparison.Ordinal)) line = line[..^2];
        line = line.Trim();
        return line.StartsWith('*') ? line[1..].Trim() : line;
    }
}
