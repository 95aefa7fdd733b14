using System.Text.Json;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using Infinite.Packaging.Tests.Support;

namespace Infinite.Packaging.Tests.Examples;

/// <summary>The examples name the package version the build produces, and the notebook is a valid C# notebook.</summary>
public sealed partial class ExampleFilesTests
{
    private static string Example(string name) => Path.Combine(RepoPaths.Root, "examples", name);

    /// <summary>The Version of Directory.Build.props: what `./build.sh pack` writes.</summary>
    private static string PackageVersion() =>
        XDocument.Load(Path.Combine(RepoPaths.Root, "Directory.Build.props")).Descendants("Version").Single().Value;

    [Fact]
    public void Every_example_references_the_version_that_pack_produces()
    {
        string version = PackageVersion();
        Assert.Equal(version, QuickstartDirective().Match(File.ReadAllText(Example("quickstart.cs"))).Groups[1].Value);
        string notebook = string.Concat(Notebook.CodeCells(Example("quickstart.ipynb")));
        Assert.Equal(version, NotebookReference().Match(notebook).Groups[1].Value);
        string console = XDocument.Load(Example("console/InfiniteConsole.csproj")).Descendants("InfiniteVersion").Single().Value;
        Assert.Equal(version, console);
    }

    [Fact]
    public void The_notebook_is_a_dotnet_interactive_csharp_notebook()
    {
        using JsonDocument notebook = Notebook.Load(Example("quickstart.ipynb"));
        JsonElement root = notebook.RootElement;
        Assert.Equal(4, root.GetProperty("nbformat").GetInt32());
        Assert.Equal(".net-csharp", root.GetProperty("metadata").GetProperty("kernelspec").GetProperty("name").GetString());
        var ids = new HashSet<string>();
        foreach (JsonElement cell in root.GetProperty("cells").EnumerateArray())
        {
            Assert.True(ids.Add(cell.GetProperty("id").GetString()!), "cell ids must be unique");
            if (cell.GetProperty("cell_type").GetString() == "code")
            {
                Assert.Equal(0, cell.GetProperty("outputs").GetArrayLength()); // committed without outputs
                Assert.Equal("csharp", cell.GetProperty("metadata").GetProperty("polyglot_notebook").GetProperty("kernelName").GetString());
            }
        }
        string code = string.Concat(Notebook.CodeCells(Example("quickstart.ipynb")));
        Assert.Contains("#i \"nuget: ", code, StringComparison.Ordinal);
        Assert.Contains("LoadDemoAsync", code, StringComparison.Ordinal);
        Assert.Contains("ChatAsync", code, StringComparison.Ordinal);
    }

    [GeneratedRegex(@"^#:package Infinite@(\S+)$", RegexOptions.Multiline)]
    private static partial Regex QuickstartDirective();

    [GeneratedRegex(@"#r ""nuget: Infinite, ([^""]+)""")]
    private static partial Regex NotebookReference();
}
