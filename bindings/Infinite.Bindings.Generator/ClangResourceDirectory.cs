using System.Text.RegularExpressions;

namespace Infinite.Bindings.Generator;

/// <summary>
/// Finds clang's resource directory (the one whose include/ holds stddef.h and stdint.h's helpers).
/// libclang looks for it beside its own .so, which is not where Debian installs it, so the
/// generator passes -resource-dir itself. It must match libclang's major version.
/// </summary>
internal static class ClangResourceDirectory
{
    public static string Find()
    {
        var version = LibClang.ToManaged(LibClang.clang_getClangVersion());
        var major = Regex.Match(version, @"version (\d+)").Groups[1].Value;
        string[] roots = [$"/usr/lib/llvm-{major}/lib/clang", "/usr/lib/clang", "/usr/local/lib/clang"];
        foreach (var root in roots.Where(Directory.Exists))
        {
            // Named 14.0.6 up to clang 15, 16 from clang 16 on.
            var match = Directory.GetDirectories(root)
                .Where(d => Path.GetFileName(d) == major || Path.GetFileName(d).StartsWith(major + ".", StringComparison.Ordinal))
                .Order(StringComparer.Ordinal)
                .FirstOrDefault(d => File.Exists(Path.Combine(d, "include", "stddef.h")));
            if (match is not null) return match;
        }
        throw new GeneratorException($"cannot find the resource directory (include/stddef.h) of {version} under " +
            $"{string.Join(", ", roots)}; install libclang-common-{major}-dev or pass --resource-dir");
    }
}
