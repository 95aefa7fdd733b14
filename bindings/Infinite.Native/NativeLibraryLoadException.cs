namespace Infinite.Native;

/// <summary>One place the resolver looked for the native library, and why it was not used.</summary>
public sealed record NativeLoadAttempt(string Path, string Reason);

/// <summary>
/// No usable native library was found. The message lists every path tried and why each failed,
/// so a missing file, a missing dependency and a stale build with another ABI look different.
/// </summary>
public sealed class NativeLibraryLoadException : DllNotFoundException
{
    public NativeLibraryLoadException(string library, IReadOnlyList<NativeLoadAttempt> attempts)
        : base(Compose(library, attempts))
    {
        Attempts = attempts;
    }

    /// <summary>Every candidate in the order it was tried.</summary>
    public IReadOnlyList<NativeLoadAttempt> Attempts { get; }

    private static string Compose(string library, IReadOnlyList<NativeLoadAttempt> attempts)
    {
        var lines = attempts.Select(a => $"  {a.Path}: {a.Reason}");
        return $"Could not load the Infinite native library ({library}). Tried:{Environment.NewLine}" +
               string.Join(Environment.NewLine, lines) + Environment.NewLine +
               $"Build it with './build.sh build', or set {NativeLibraryResolver.PathVariable} to the file or its folder.";
    }
}
