using System.CommandLine;
using Infinite.Native;

namespace Infinite.Cli;

/// <summary><c>infinite info</c>: which native library was loaded, its version, ABI and build.</summary>
internal static class InfoCommand
{
    public static Command Create()
    {
        var command = new Command("info", "Show the native library's path, version, ABI and build options.");
        command.SetAction(_ => Run(Console.Out));
        return command;
    }

    internal static int Run(TextWriter output)
    {
        NativeLibraryResolver.Load();
        output.WriteLine($"library:  {NativeLibraryResolver.LoadedPath}");
        output.WriteLine($"version:  {InfiniteLibrary.Version}");
        output.WriteLine($"abi:      {InfiniteLibrary.AbiVersion} (bindings {InfiniteLibrary.BindingsAbiVersion})");
        output.WriteLine($"build:    {InfiniteLibrary.BuildInfo}");
        return 0;
    }
}
