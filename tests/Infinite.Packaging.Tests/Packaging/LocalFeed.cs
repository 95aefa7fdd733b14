using System.Globalization;
using Infinite.Packaging.Tests.Support;

namespace Infinite.Packaging.Tests.Packaging;

/// <summary>
/// Packs Infinite.Native and Infinite (from this build, as `./build.sh pack` does) into a temporary feed once per
/// test class, under a version no earlier run used, so the shared NuGet cache can never hand back a stale package.
/// Dispose removes the feed and that version's folders from the cache.
/// </summary>
public sealed class LocalFeed : IAsyncLifetime
{
    public string Directory { get; } = System.IO.Directory.CreateTempSubdirectory("infinite-feed-").FullName;

    public string Version { get; } = string.Create(CultureInfo.InvariantCulture, $"0.1.0-test.{DateTime.UtcNow.Ticks}");

    /// <summary>Why packing failed, reported by every test that needs the feed.</summary>
    public string? Failure { get; private set; }

    public async Task InitializeAsync()
    {
        if (!File.Exists(RepoPaths.NativeLibrary))
        {
            Failure = $"{RepoPaths.NativeLibrary} is missing: run ./build.sh build first";
            return;
        }
        foreach (string project in new[] { "bindings/Infinite.Native/Infinite.Native.csproj", "src/Infinite/Infinite.csproj" })
        {
            ProcessResult pack = await ProcessRun.RunAsync("dotnet",
                ["pack", project, "-c", RepoPaths.Configuration, "--no-build", "-o", Directory, $"-p:Version={Version}", "-nologo"],
                RepoPaths.Root, TimeSpan.FromMinutes(2));
            if (pack.ExitCode != 0)
            {
                Failure = pack.Describe();
                return;
            }
        }
    }

    /// <summary>A nuget.config that puts this feed ahead of the machine's usual sources.</summary>
    public async Task WriteNuGetConfigAsync(string folder)
    {
        await File.WriteAllTextAsync(Path.Combine(folder, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <add key="infinite-test-feed" value="{Directory}" />
              </packageSources>
            </configuration>
            """);
    }

    public Task DisposeAsync()
    {
        System.IO.Directory.Delete(Directory, recursive: true);
        string cache = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } explicitCache
            ? explicitCache
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        foreach (string id in new[] { "infinite", "infinite.native" })
        {
            string cached = Path.Combine(cache, id, Version);
            if (System.IO.Directory.Exists(cached))
            {
                System.IO.Directory.Delete(cached, recursive: true);
            }
        }
        return Task.CompletedTask;
    }
}
