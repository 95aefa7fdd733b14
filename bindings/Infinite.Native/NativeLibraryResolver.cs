using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Infinite.Native;

/// <summary>
/// Finds libinfinite for the generated P/Invoke declarations. Order: the file or folder in
/// <c>INFINITE_NATIVE_PATH</c>, the app folder, <c>runtimes/&lt;rid&gt;/native</c> beside the app and
/// beside this assembly's package, then the system's own search. Each candidate must load and
/// report the ABI version these bindings were generated for; otherwise the next one is tried,
/// and when none fits one exception lists them all.
/// </summary>
public static class NativeLibraryResolver
{
    /// <summary>Environment variable naming the native library file, or the folder holding it.</summary>
    public const string PathVariable = "INFINITE_NATIVE_PATH";

    private static readonly object Gate = new();
    private static nint _handle;

    /// <summary>The platform's file name of the core library, e.g. <c>libinfinite.so</c>.</summary>
    public static string FileName { get; } =
        OperatingSystem.IsWindows() ? "infinite.dll" :
        OperatingSystem.IsMacOS() ? "libinfinite.dylib" : "libinfinite.so";

    /// <summary>The path the library was loaded from, once loaded.</summary>
    public static string? LoadedPath { get; private set; }

    // A library registering its own resolver is the point here: every P/Invoke of this assembly goes through it.
#pragma warning disable CA2255
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void Register() =>
        NativeLibrary.SetDllImportResolver(typeof(NativeLibraryResolver).Assembly, Resolve);

    private static nint Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath) =>
        name == NativeMethods.LibraryName ? Load() : 0;

    /// <summary>Loads the library now (it is otherwise loaded on the first native call).</summary>
    /// <exception cref="NativeLibraryLoadException">No candidate loaded with the right ABI.</exception>
    public static nint Load()
    {
        lock (Gate)
        {
            if (_handle == 0)
            {
                var candidates = Candidates(Environment.GetEnvironmentVariable(PathVariable),
                    AppContext.BaseDirectory, Path.GetDirectoryName(typeof(NativeLibraryResolver).Assembly.Location));
                (_handle, LoadedPath) = LoadFirst(candidates);
            }
            return _handle;
        }
    }

    /// <summary>The candidate paths in search order; a bare file name means the system's search.</summary>
    internal static IReadOnlyList<string> Candidates(string? overridePath, string appDirectory, string? assemblyDirectory)
    {
        var list = new List<string>();
        if (!string.IsNullOrWhiteSpace(overridePath))
        {
            list.Add(Directory.Exists(overridePath) ? Path.Combine(overridePath, FileName) : overridePath);
        }
        string rid = RuntimeInformation.RuntimeIdentifier.StartsWith("linux-", StringComparison.Ordinal)
            ? $"linux-{RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant()}"
            : RuntimeInformation.RuntimeIdentifier;
        list.Add(Path.Combine(appDirectory, FileName));
        list.Add(Path.Combine(appDirectory, "runtimes", rid, "native", FileName));
        if (!string.IsNullOrEmpty(assemblyDirectory))
        {
            // A package's lib/<tfm>/X.dll sits two levels below its runtimes/ folder (NuGet cache, notebooks).
            list.Add(Path.Combine(assemblyDirectory, FileName));
            list.Add(Path.GetFullPath(Path.Combine(assemblyDirectory, "..", "..", "runtimes", rid, "native", FileName)));
        }
        list.Add(FileName);
        return list.Distinct(StringComparer.Ordinal).ToList();
    }

    /// <summary>Loads the first candidate that opens and has the expected ABI.</summary>
    /// <exception cref="NativeLibraryLoadException">Lists every candidate and its reason.</exception>
    internal static (nint Handle, string Path) LoadFirst(IEnumerable<string> candidates)
    {
        var attempts = new List<NativeLoadAttempt>();
        foreach (string candidate in candidates)
        {
            bool bareName = !candidate.Contains(Path.DirectorySeparatorChar);
            if (!bareName && !File.Exists(candidate))
            {
                attempts.Add(new(candidate, "not found"));
                continue;
            }
            nint handle;
            try
            {
                handle = NativeLibrary.Load(candidate);
            }
            catch (DllNotFoundException e)
            {
                attempts.Add(new(bareName ? $"{candidate} (system search)" : candidate, e.Message));
                continue;
            }
            catch (BadImageFormatException e)
            {
                attempts.Add(new(candidate, e.Message));
                continue;
            }
            string? abiProblem = CheckAbi(handle);
            if (abiProblem is null)
            {
                return (handle, candidate);
            }
            NativeLibrary.Free(handle);
            attempts.Add(new(candidate, abiProblem));
        }
        throw new NativeLibraryLoadException(FileName, attempts);
    }

    // A fail-fast probe: a stale build is refused here with both versions, not later with a crash.
    private static unsafe string? CheckAbi(nint handle)
    {
        if (!NativeLibrary.TryGetExport(handle, "inf_abi_version", out nint export))
        {
            return "loaded, but it has no inf_abi_version export: not an Infinite library";
        }
        uint version = ((delegate* unmanaged[Cdecl]<uint>)export)();
        return version == (uint)NativeMethods.INF_ABI_VERSION
            ? null
            : $"loaded, but its ABI version is {version} and these bindings need {NativeMethods.INF_ABI_VERSION}: rebuild the native library or the bindings";
    }
}
