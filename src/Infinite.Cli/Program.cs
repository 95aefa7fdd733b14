using System.CommandLine;
using Infinite.Cli;

var root = new RootCommand("Infinite: long-context LLM serving for .NET.")
{
    DevicesCommand.Create(),
    InfoCommand.Create(),
    GenerateCommand.Create(),
    BenchCommand.Create(),
};
return root.Parse(args).Invoke();
