namespace Infinite.Packaging.Tests.Support;

/// <summary>Where the repository and this build's outputs are, found from the test assembly's own location.</summary>
internal static class RepoPaths
{
    public static string Root { get; } = FindRoot();

    /// <summary>Release or Debug: the configuration this test assembly was built in (bin/&lt;config&gt;/net10.0/).</summary>
    public static string Configuration { get; } =
        new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent!.Name;

    public static string CliDll => Path.Combine(Root, "src", "Infinite.Cli", "bin", Configuration, "net10.0", "Infinite.Cli.dll");

    public static string NativeLibrary => Path.Combine(Root, "build", "native", "lib", "libinfinite.so");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Interop.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException($"no Interop.sln above {AppContext.BaseDirectory}");
    }
}
