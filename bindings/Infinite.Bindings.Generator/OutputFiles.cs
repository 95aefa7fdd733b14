namespace Infinite.Bindings.Generator;

/// <summary>Writes the generated files (only when changed) or, with --check, compares them with disk.</summary>
internal static class OutputFiles
{
    private const int MaxDiffLines = 20;

    public static int Write(IEnumerable<(string Path, string Text)> files, Options options)
    {
        foreach (var (path, text) in files)
        {
            var full = options.FullPath(path);
            if (ReadNormalized(full) == text)
            {
                Console.WriteLine($"unchanged {options.DisplayPath(path)}");
                continue;
            }
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            File.WriteAllText(full, text);
            Console.WriteLine($"wrote {options.DisplayPath(path)}");
        }
        return 0;
    }

    /// <summary>0 when every file on disk equals a fresh generation; 1, with the differences, otherwise.</summary>
    public static int Check(IEnumerable<(string Path, string Text)> files, Options options)
    {
        var stale = false;
        foreach (var (path, text) in files)
        {
            var onDisk = ReadNormalized(options.FullPath(path));
            if (onDisk == text) continue;
            stale = true;
            if (onDisk is null)
            {
                Console.Error.WriteLine($"{options.DisplayPath(path)} is missing");
                continue;
            }
            Console.Error.WriteLine($"{options.DisplayPath(path)} differs from a fresh generation (- on disk, + generated):");
            foreach (var line in Diff(onDisk.Split('\n'), text.Split('\n'))) Console.Error.WriteLine("  " + line);
        }
        if (!stale)
        {
            Console.WriteLine("generated bindings are up to date");
            return 0;
        }
        Console.Error.WriteLine("run ./build.sh bindings to regenerate");
        return 1;
    }

    // A checkout with CRLF line endings (git autocrlf) holds the same content.
    private static string? ReadNormalized(string path) =>
        File.Exists(path) ? File.ReadAllText(path).Replace("\r\n", "\n", StringComparison.Ordinal) : null;

    /// <summary>The first differing lines, aligned on the longest common subsequence (the files are a
    /// few hundred lines, so the quadratic table is cheap).</summary>
    private static IEnumerable<string> Diff(string[] before, string[] after)
    {
        var common = new int[before.Length + 1, after.Length + 1];
        for (var i = before.Length - 1; i >= 0; i--)
        {
            for (var j = after.Length - 1; j >= 0; j--)
            {
                common[i, j] = before[i] == after[j] ? common[i + 1, j + 1] + 1 : Math.Max(common[i + 1, j], common[i, j + 1]);
            }
        }
        int x = 0, y = 0, shown = 0;
        while (x < before.Length || y < after.Length)
        {
            if (x < before.Length && y < after.Length && before[x] == after[y])
            {
                x++;
                y++;
                continue;
            }
            if (shown++ == MaxDiffLines)
            {
                yield return "...";
                yield break;
            }
            if (x < before.Length && (y == after.Length || common[x + 1, y] >= common[x, y + 1]))
            {
                yield return $"-{x + 1,5}: {before[x++]}";
            }
            else
            {
                yield return $"+{y + 1,5}: {after[y++]}";
            }
        }
    }
}
