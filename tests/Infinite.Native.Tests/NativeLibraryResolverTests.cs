namespace Infinite.Native.Tests;

public sealed class NativeLibraryResolverTests
{
    [Fact]
    public void The_failure_message_names_every_path_tried_and_why()
    {
        string dir = Directory.CreateTempSubdirectory("infinite-resolver").FullName;
        try
        {
            string missing = Path.Combine(dir, "nothing-here", "libinfinite.so");
            string garbage = Path.Combine(dir, "libinfinite.so");
            File.WriteAllText(garbage, "this is not a shared library");
            string notOurs = "libz.so.1";

            var e = Assert.Throws<NativeLibraryLoadException>(() =>
                NativeLibraryResolver.LoadFirst([missing, garbage, notOurs]));

            Assert.Equal(3, e.Attempts.Count);
            Assert.Contains(missing, e.Message, StringComparison.Ordinal);
            Assert.Contains("not found", e.Attempts[0].Reason, StringComparison.Ordinal);
            Assert.Contains(garbage, e.Message, StringComparison.Ordinal);
            Assert.DoesNotContain("not found", e.Attempts[1].Reason, StringComparison.Ordinal);
            Assert.Contains("not an Infinite library", e.Attempts[2].Reason, StringComparison.Ordinal);
            Assert.Contains(NativeLibraryResolver.PathVariable, e.Message, StringComparison.Ordinal);
            Assert.IsAssignableFrom<DllNotFoundException>(e);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void The_override_comes_first_and_a_folder_means_the_file_inside_it()
    {
        string dir = Directory.CreateTempSubdirectory("infinite-override").FullName;
        try
        {
            var candidates = NativeLibraryResolver.Candidates(dir, "/app", "/pkg/lib/net10.0");
            Assert.Equal(Path.Combine(dir, NativeLibraryResolver.FileName), candidates[0]);
            Assert.Equal(Path.Combine("/app", NativeLibraryResolver.FileName), candidates[1]);
            Assert.Contains(candidates, c => c.StartsWith("/app/runtimes/", StringComparison.Ordinal) && c.EndsWith("/native/" + NativeLibraryResolver.FileName, StringComparison.Ordinal));
            Assert.Contains(candidates, c => c.StartsWith("/pkg/runtimes/", StringComparison.Ordinal));
            Assert.Equal(NativeLibraryResolver.FileName, candidates[^1]);

            var file = NativeLibraryResolver.Candidates("/opt/x/libinfinite.so", "/app", null);
            Assert.Equal("/opt/x/libinfinite.so", file[0]);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void The_real_library_loads_from_the_app_folder()
    {
        NativeLibraryResolver.Load();
        Assert.Equal(Path.Combine(AppContext.BaseDirectory, NativeLibraryResolver.FileName), NativeLibraryResolver.LoadedPath);
    }
}
