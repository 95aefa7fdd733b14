using System.CommandLine;

namespace Infinite.Cli;

/// <summary>The `infinite` command tree (a function, so tests can run commands with captured output).</summary>
internal static class CliApp
{
    public static RootCommand CreateRoot() => new("Infinite: long-context LLM serving for .NET.")
    {
        DevicesCommand.Create(),
        InfoCommand.Create(),
        GenerateCommand.Create(),
        ServeCommand.Create(),
        BenchCommand.Create(),
        SimulateCommand.Create(),
    };
}
