using System.Text;

namespace Infinite.Bindings.Generator;

/// <summary>
/// Writes LayoutTests.g.cs: per struct, the .NET size and field offsets must equal clang's; per
/// function, the loaded native library must export it. Together they catch a stale generated file,
/// a header edited without rebuilding the library, and a .NET layout that differs from C's.
/// </summary>
internal static class LayoutTestWriter
{
    public static string Write(HeaderModel model, Options options)
    {
        var text = new StringBuilder(CSharpWriter.Banner(options));
        void Line(string line = "") => text.Append(line).Append('\n');

        Line();
        Line("using System.Runtime.CompilerServices;");
        Line("using System.Runtime.InteropServices;");
        Line($"using {options.Namespace};");
        Line("using Xunit;");
        Line();
        Line($"namespace {options.TestNamespace};");
        Line();
        Line($"/// <summary>The generated declarations against what clang saw in {Path.GetFileName(options.Header)}.</summary>");
        Line("public sealed class LayoutTests");
        Line("{");
        foreach (var s in model.Structs)
        {
            Line("    [Fact]");
            Line($"    public void {s.Name}_has_native_layout()");
            Line("    {");
            Line($"        Assert.Equal({s.Size}, Unsafe.SizeOf<{s.Name}>());");
            Line($"        Assert.Equal({s.Size}, Marshal.SizeOf<{s.Name}>());");
            foreach (var f in s.Fields)
            {
                Line($"        Assert.Equal({f.Offset}, Marshal.OffsetOf<{s.Name}>(nameof({s.Name}.{Naming.Identifier(f.Name)})).ToInt64());");
            }
            Line("    }");
            Line();
        }
        if (model.Functions.Count > 0)
        {
            Line("    [Theory]");
            foreach (var f in model.Functions) Line($"    [InlineData(\"{f.Name}\")]");
            Line("    public void function_is_exported(string name)");
            Line("    {");
            Line("        // Runs the bindings assembly's module initializer, which registers the resolver that finds the library.");
            Line($"        RuntimeHelpers.RunModuleConstructor(typeof({options.ClassName}).Module.ModuleHandle);");
            Line($"        var library = NativeLibrary.Load({options.ClassName}.LibraryName, typeof({options.ClassName}).Assembly, null);");
            Line("        Assert.NotEqual(0, NativeLibrary.GetExport(library, name));");
            Line("    }");
        }
        else if (text[^2] == '\n')
        {
            text.Length--; // no blank line before the closing brace
        }
        Line("}");
        return text.ToString();
    }
}
