// Generates the P/Invoke declarations and their layout tests from the C header:
//   dotnet run --project bindings/Infinite.Bindings.Generator -- @bindings/infinite.rsp [--check]
// Exit codes: 0 done (or up to date), 1 --check found stale files, 2 error (message on stderr).
using Infinite.Bindings.Generator;

try
{
    var options = Options.Parse(args);
    LibClang.Load();
    var model = HeaderParser.Parse(options);
    (string, string)[] files =
    [
        (options.Output, CSharpWriter.Write(model, options)),
        (options.TestOutput, LayoutTestWriter.Write(model, options)),
    ];
    if (options.Check)
    {
        return OutputFiles.Check(files, options);
    }
    if (model.SkippedMacros.Count > 0)
    {
        Console.WriteLine($"skipped macros (body is not one integer literal): {string.Join(", ", model.SkippedMacros)}");
    }
    return OutputFiles.Write(files, options);
}
catch (GeneratorException e)
{
    Console.Error.WriteLine($"bindings generator: error: {e.Message}");
    return 2;
}
