using System.Runtime.InteropServices;
using Infinite.Native;

namespace Infinite.Tests.Runtime;

/// <summary>A test that needs the native model (<c>inf_model_*</c>) in the loaded libinfinite; skipped, with
/// the reason, when the library cannot be loaded or predates the model exports.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class NativeModelFactAttribute : FactAttribute
{
    public NativeModelFactAttribute()
    {
        Skip = MissingReason.Value;
    }

    internal static readonly Lazy<string?> MissingReason = new(() =>
    {
        try
        {
            nint library = NativeLibraryResolver.Load();
            return NativeLibrary.TryGetExport(library, "inf_model_step", out _)
                ? null
                : $"{NativeLibraryResolver.LoadedPath} has no inf_model_* exports yet (the native model is not built into it)";
        }
        catch (NativeLibraryLoadException e)
        {
            return $"libinfinite cannot be loaded: {e.Message}";
        }
    });
}
