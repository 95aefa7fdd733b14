namespace Infinite.Bindings.Generator;

/// <summary>C names to C# names: the remapped enums, their PascalCase members, keyword escaping.</summary>
internal static class Naming
{
    private static readonly HashSet<string> Keywords = new(StringComparer.Ordinal)
    {
        "abstract", "as", "base", "bool", "break", "byte", "case", "catch", "char", "checked", "class", "const",
        "continue", "decimal", "default", "delegate", "do", "double", "else", "enum", "event", "explicit", "extern",
        "false", "finally", "fixed", "float", "for", "foreach", "goto", "if", "implicit", "in", "int", "interface",
        "internal", "is", "lock", "long", "namespace", "new", "null", "object", "operator", "out", "override",
        "params", "private", "protected", "public", "readonly", "ref", "return", "sbyte", "sealed", "short",
        "sizeof", "stackalloc", "static", "string", "struct", "switch", "this", "throw", "true", "try", "typeof",
        "uint", "ulong", "unchecked", "unsafe", "ushort", "using", "virtual", "void", "volatile", "while",
    };

    /// <summary>A C identifier usable as a C# identifier (<c>params</c> -> <c>@params</c>).</summary>
    public static string Identifier(string name) => Keywords.Contains(name) ? "@" + name : name;

    /// <summary>The C# name of a C enum: its --remap, or the C name.</summary>
    public static string Enum(string cName, Options options) =>
        options.Remaps.TryGetValue(cName, out var remapped) ? remapped : cName;

    /// <summary>INF_STATUS_OUT_OF_RANGE in enum inf_status -> OutOfRange: strip UPPER(enum name) + "_",
    /// then each '_'-separated word gets an upper-case first letter and lower-case rest.</summary>
    public static string EnumMember(string enumName, string memberName)
    {
        var prefix = enumName.ToUpperInvariant() + "_";
        var words = memberName.StartsWith(prefix, StringComparison.Ordinal)
            ? memberName[prefix.Length..].Split('_', StringSplitOptions.RemoveEmptyEntries)
            : [];
        if (words.Length == 0)
        {
            throw new GeneratorException($"{enumName}: enumerator {memberName} must be named {prefix}<NAME>");
        }
        var pascal = string.Concat(words.Select(w => char.ToUpperInvariant(w[0]) + w[1..].ToLowerInvariant()));
        return char.IsAsciiDigit(pascal[0]) ? "_" + pascal : pascal;
    }
}
