using Infinite.Models;

namespace Infinite;

/// <summary>
/// The built-in demo model: <see cref="SyntheticModel.DemoConfig"/> (12M parameters) with seeded random weights and
/// a small byte-level vocabulary. Written once to <see cref="CacheDirectory"/>; its output is gibberish by design.
/// </summary>
public static class DemoModel
{
    /// <summary>Seed of the demo weights; part of the file name so a change writes a new file.</summary>
    public const int Seed = 1;

    private const string FileName = "infinite-demo-12m-f32-seed1.gguf";

    /// <summary>$INFINITE_CACHE, else $XDG_CACHE_HOME/infinite, else ~/.cache/infinite.</summary>
    public static string CacheDirectory
    {
        get
        {
            string? explicitDir = Environment.GetEnvironmentVariable("INFINITE_CACHE");
            if (!string.IsNullOrEmpty(explicitDir))
            {
                return explicitDir;
            }
            string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
            string root = !string.IsNullOrEmpty(xdg)
                ? xdg
                : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
            return Path.Combine(root, "infinite");
        }
    }

    /// <summary>Path of the demo GGUF, writing it first when it is missing (to a temporary name, then renamed, so
    /// a crash never leaves a half-written model behind).</summary>
    public static string EnsureWritten(IProgress<LoadProgress>? progress = null)
    {
        string path = Path.Combine(CacheDirectory, FileName);
        if (File.Exists(path))
        {
            return path;
        }
        Directory.CreateDirectory(CacheDirectory);
        string temporary = $"{path}.{Environment.ProcessId}.tmp";
        try
        {
            SyntheticModel.WriteGguf(temporary, SyntheticModel.DemoConfig, Seed, TensorType.F32, progress);
            File.Move(temporary, path, overwrite: true);
        }
        finally
        {
            File.Delete(temporary);
        }
        return path;
    }
}
