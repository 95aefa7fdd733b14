namespace Infinite.Bindings.Generator;

/// <summary>
/// The generator's settings. Arguments are read in order; <c>@file</c> inserts a response file's
/// options at that point (one option and its value per line, <c>#</c> starts a comment line). A
/// later single-valued option overrides an earlier one, so <c>@bindings/infinite.rsp --header x.h</c>
/// works; --include-directory, --remap and --flags accumulate.
/// Relative paths are relative to the repository root: --root if given, otherwise the parent of the
/// directory holding the first response file (the rsp lives in &lt;root&gt;/bindings/).
/// </summary>
internal sealed class Options
{
    public string Root { get; private set; } = "";
    public string? ResponseFile { get; private set; }
    public string Header { get; private set; } = "";
    public List<string> IncludeDirectories { get; } = [];
    public string Namespace { get; private set; } = "";
    public string ClassName { get; private set; } = "";
    public string Library { get; private set; } = "";
    public string Prefix { get; private set; } = "";
    public string Output { get; private set; } = "";
    public string TestOutput { get; private set; } = "";
    public string TestNamespace { get; private set; } = "";
    /// <summary>C enum name -> C# enum name.</summary>
    public Dictionary<string, string> Remaps { get; } = new(StringComparer.Ordinal);
    /// <summary>C enum names that get [Flags].</summary>
    public HashSet<string> Flags { get; } = new(StringComparer.Ordinal);
    /// <summary>Clang's resource directory (holds include/stddef.h); detected when absent.</summary>
    public string? ResourceDir { get; private set; }
    /// <summary>Compare with the files on disk instead of writing them.</summary>
    public bool Check { get; private set; }

    public string FullPath(string path) => Path.GetFullPath(Path.Combine(Root, path));

    /// <summary>The path as written in generated files and messages: relative to the root, with '/',
    /// so the output does not depend on where the repository is checked out (outside it: as given).</summary>
    public string DisplayPath(string path)
    {
        var relative = Path.GetRelativePath(Root, FullPath(path));
        return (relative.StartsWith("..", StringComparison.Ordinal) || Path.IsPathRooted(relative) ? path : relative)
            .Replace('\\', '/');
    }

    public static Options Parse(IEnumerable<string> args)
    {
        var options = new Options();
        var tokens = new List<string>();
        foreach (var arg in args)
        {
            if (arg.StartsWith('@'))
            {
                options.ResponseFile ??= Path.GetFullPath(arg[1..]);
                tokens.AddRange(ReadResponseFile(arg[1..]));
            }
            else
            {
                tokens.Add(arg);
            }
        }

        string? root = null;
        for (var i = 0; i < tokens.Count; i++)
        {
            var name = tokens[i];
            if (name == "--check")
            {
                options.Check = true;
                continue;
            }
            if (!name.StartsWith("--", StringComparison.Ordinal) || i + 1 == tokens.Count)
            {
                throw new GeneratorException($"expected '--option value', got '{name}'");
            }
            var value = tokens[++i];
            switch (name)
            {
                case "--root": root = value; break;
                case "--header": options.Header = value; break;
                case "--include-directory": options.IncludeDirectories.Add(value); break;
                case "--namespace": options.Namespace = value; break;
                case "--class": options.ClassName = value; break;
                case "--library": options.Library = value; break;
                case "--prefix": options.Prefix = value; break;
                case "--output": options.Output = value; break;
                case "--test-output": options.TestOutput = value; break;
                case "--test-namespace": options.TestNamespace = value; break;
                case "--resource-dir": options.ResourceDir = value; break;
                case "--flags": options.Flags.Add(value); break;
                case "--remap":
                    var parts = value.Split('=', 2, StringSplitOptions.TrimEntries);
                    if (parts.Length != 2 || parts[0].Length == 0 || parts[1].Length == 0)
                    {
                        throw new GeneratorException($"--remap expects c_name=CSharpName, got '{value}'");
                    }
                    options.Remaps[parts[0]] = parts[1];
                    break;
                default: throw new GeneratorException($"unknown option '{name}'");
            }
        }

        options.Root = Path.GetFullPath(root
            ?? Path.GetDirectoryName(Path.GetDirectoryName(options.ResponseFile))
            ?? throw new GeneratorException(
                "usage: dotnet run --project bindings/Infinite.Bindings.Generator -- @bindings/infinite.rsp [--check] (or --root and every option)"));
        if (options.ResourceDir is not null)
        {
            options.ResourceDir = options.FullPath(options.ResourceDir);
        }
        var missing = new[]
        {
            ("--header", options.Header), ("--namespace", options.Namespace), ("--class", options.ClassName),
            ("--library", options.Library), ("--prefix", options.Prefix), ("--output", options.Output),
            ("--test-output", options.TestOutput), ("--test-namespace", options.TestNamespace),
        }.Where(o => o.Item2.Length == 0).Select(o => o.Item1).ToList();
        if (missing.Count > 0)
        {
            throw new GeneratorException($"missing required option(s): {string.Join(", ", missing)}");
        }
        return options;
    }

    private static IEnumerable<string> ReadResponseFile(string path)
    {
        if (!File.Exists(path))
        {
            throw new GeneratorException($"response file not found: {Path.GetFullPath(path)}");
        }
        foreach (var raw in File.ReadAllLines(path))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }
            // "--option value" on one line, or ClangSharp's style of the value on a line of its own.
            var split = line.IndexOfAny([' ', '\t']);
            if (split < 0)
            {
                yield return line;
                continue;
            }
            yield return line[..split];
            yield return line[split..].Trim();
        }
    }
}
