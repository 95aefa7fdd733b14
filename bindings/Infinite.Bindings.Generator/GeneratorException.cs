namespace Infinite.Bindings.Generator;

/// <summary>A problem the user must fix (bad option, parse error, a C construct with no faithful C# form).
/// Program prints its message and exits 2; anything else is a bug in the generator.</summary>
internal sealed class GeneratorException(string message) : Exception(message);
