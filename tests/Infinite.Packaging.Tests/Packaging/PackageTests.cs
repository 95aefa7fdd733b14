using System.IO.Compression;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using Infinite.Packaging.Tests.Support;

namespace Infinite.Packaging.Tests.Packaging;

/// <summary>The NuGet packages as a consumer gets them: their contents, a fresh console app, the file-based quickstart.</summary>
[Trait("Category", "Packaging")]
public sealed partial class PackageTests(LocalFeed feed) : IClassFixture<LocalFeed>, IDisposable
{
    private static readonly TimeSpan Limit = TimeSpan.FromMinutes(3);

    private readonly string _work = Directory.CreateTempSubdirectory("infinite-consumer-").FullName;

    public void Dispose() => Directory.Delete(_work, recursive: true);

    private string Package(string id)
    {
        Assert.True(feed.Failure is null, feed.Failure);
        string path = Path.Combine(feed.Directory, $"{id}.{feed.Version}.nupkg");
        Assert.True(File.Exists(path), $"no {path}; the feed has: {string.Join(", ", Directory.GetFiles(feed.Directory))}");
        return path;
    }

    [Fact]
    public void Infinite_Native_carries_the_native_libraries_under_runtimes_linux_x64()
    {
        using ZipArchive zip = ZipFile.OpenRead(Package("Infinite.Native"));
        string[] entries = zip.Entries.Select(e => e.FullName).ToArray();
        Assert.Contains("runtimes/linux-x64/native/libinfinite.so", entries);
        Assert.Contains("lib/net10.0/Infinite.Native.dll", entries);
        long packed = zip.GetEntry("runtimes/linux-x64/native/libinfinite.so")!.Length;
        Assert.Equal(new FileInfo(RepoPaths.NativeLibrary).Length, packed);
        string cuda = Path.Combine(Path.GetDirectoryName(RepoPaths.NativeLibrary)!, "libinfinite_cuda.so");
        Assert.Equal(File.Exists(cuda), entries.Contains("runtimes/linux-x64/native/libinfinite_cuda.so"));
    }

    [Fact]
    public void Infinite_holds_the_library_and_depends_on_the_same_Infinite_Native_version()
    {
        using ZipArchive zip = ZipFile.OpenRead(Package("Infinite"));
        Assert.NotNull(zip.GetEntry("lib/net10.0/Infinite.dll"));
        Assert.Null(zip.GetEntry("lib/net10.0/Infinite.Native.dll")); // it comes with its own package
        ZipArchiveEntry nuspecEntry = zip.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal));
        using Stream stream = nuspecEntry.Open();
        XDocument nuspec = XDocument.Load(stream);
        XNamespace ns = nuspec.Root!.Name.Namespace;
        Assert.Equal("Infinite", nuspec.Descendants(ns + "id").Single().Value);
        Assert.False(string.IsNullOrWhiteSpace(nuspec.Descendants(ns + "description").Single().Value));
        XElement native = nuspec.Descendants(ns + "dependency").Single(d => (string?)d.Attribute("id") == "Infinite.Native");
        Assert.Equal(feed.Version, (string?)native.Attribute("version"));
    }

    [Fact]
    public async Task A_fresh_console_app_installs_the_package_and_generates_text()
    {
        Assert.True(feed.Failure is null, feed.Failure);
        string app = Path.Combine(_work, "app");
        await Dotnet(_work, "new", "console", "-o", app, "--framework", "net10.0");
        await feed.WriteNuGetConfigAsync(app);
        await Dotnet(app, "add", "package", "Infinite", "--version", feed.Version);
        File.Copy(Path.Combine(RepoPaths.Root, "examples", "console", "Program.cs"), Path.Combine(app, "Program.cs"), overwrite: true);

        ProcessResult run = await Dotnet(app, "run");
        Assert.Contains("model: ", run.Output, StringComparison.Ordinal);
        Assert.Contains("generated 16 tokens", run.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_file_based_quickstart_runs_against_the_package()
    {
        Assert.True(feed.Failure is null, feed.Failure);
        string source = await File.ReadAllTextAsync(Path.Combine(RepoPaths.Root, "examples", "quickstart.cs"));
        Assert.Matches(PackageDirective(), source);
        string script = Path.Combine(_work, "quickstart.cs");
        await File.WriteAllTextAsync(script, PackageDirective().Replace(source, $"#:package Infinite@{feed.Version}"));
        await feed.WriteNuGetConfigAsync(_work);

        ProcessResult run = await Dotnet(_work, "run", "quickstart.cs");
        Assert.Contains("RANDOM weights", run.Output, StringComparison.Ordinal);
        AssertGenerated(run, "completion: The capital of France is");
        AssertGenerated(run, "chat: ");
    }

    [Fact]
    public async Task The_notebook_cells_run_in_order_against_the_package()
    {
        Assert.True(feed.Failure is null, feed.Failure);
        // The notebook's C# cells, minus its #r/#i directives, are a top-level program: run them as one.
        IReadOnlyList<string> cells = Notebook.CodeCells(Path.Combine(RepoPaths.Root, "examples", "quickstart.ipynb"));
        string body = string.Join("\n", cells.SelectMany(c => c.Split('\n'))
            .Where(line => !line.TrimStart().StartsWith("#r ", StringComparison.Ordinal) && !line.Contains("#i ", StringComparison.Ordinal)));
        string script = Path.Combine(_work, "notebook.cs");
        await File.WriteAllTextAsync(script, $"#:package Infinite@{feed.Version}\n#:property PublishAot=false\n{body}\n");
        await feed.WriteNuGetConfigAsync(_work);

        ProcessResult run = await Dotnet(_work, "run", "notebook.cs");
        Assert.Contains("loaded ", run.Output, StringComparison.Ordinal);
        Assert.Contains("Once upon a time", run.Output, StringComparison.Ordinal);
        Assert.Contains("assistant: ", run.Output, StringComparison.Ordinal);
    }

    /// <summary>The line after <paramref name="prefix"/> is followed by "[N tokens]" with N at least 1.</summary>
    private static void AssertGenerated(ProcessResult run, string prefix)
    {
        int start = run.Output.IndexOf(prefix, StringComparison.Ordinal);
        Assert.True(start >= 0, run.Describe());
        Match count = TokenCount().Match(run.Output, start);
        Assert.True(count.Success && int.Parse(count.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) > 0,
            run.Describe());
    }

    private static async Task<ProcessResult> Dotnet(string folder, params string[] args)
    {
        ProcessResult result = await ProcessRun.RunAsync("dotnet", args, folder, Limit);
        Assert.True(result.ExitCode == 0, result.Describe());
        return result;
    }

    [GeneratedRegex(@"^#:package Infinite@\S+$", RegexOptions.Multiline)]
    private static partial Regex PackageDirective();

    [GeneratedRegex(@"\[(\d+) tokens\]")]
    private static partial Regex TokenCount();
}
