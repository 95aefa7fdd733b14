using static Infinite.Bindings.Generator.LibClang;

namespace Infinite.Bindings.Generator;

/// <summary>
/// Parses the header with libclang and builds the <see cref="HeaderModel"/>. Only declarations
/// spelled in the header itself whose names start with --prefix are kept (macros: the upper-case
/// prefix). Anything without a faithful blittable C# form fails here, naming the declaration and
/// its C type, so the writers never guess.
/// </summary>
internal sealed class HeaderParser
{
    /// <summary>How a type is used: arrays are only allowed as fields, void only behind a pointer or
    /// as a result, opaque structs only behind a pointer.</summary>
    private enum Use { Value, Result, Field, Pointee }

    /// <summary>Typedefs mapped by name: their width is fixed by the name, whereas the C type they alias
    /// differs between platforms (int64_t is long on Linux, long long on Windows).</summary>
    private static readonly Dictionary<string, Primitive> NamedTypedefs = new(StringComparer.Ordinal)
    {
        ["int8_t"] = Primitive.Int8, ["uint8_t"] = Primitive.UInt8,
        ["int16_t"] = Primitive.Int16, ["uint16_t"] = Primitive.UInt16,
        ["int32_t"] = Primitive.Int32, ["uint32_t"] = Primitive.UInt32,
        ["int64_t"] = Primitive.Int64, ["uint64_t"] = Primitive.UInt64,
        ["size_t"] = Primitive.NUInt, ["uintptr_t"] = Primitive.NUInt,
        ["ptrdiff_t"] = Primitive.NInt, ["intptr_t"] = Primitive.NInt,
    };

    /// <summary>Builtin C types with the same width on every platform the bindings target. Missing on
    /// purpose: long (32-bit on Windows), wchar_t, long double, __int128.</summary>
    private static readonly Dictionary<CXTypeKind, Primitive> Builtins = new()
    {
        [CXTypeKind.Bool] = Primitive.UInt8, [CXTypeKind.Char_S] = Primitive.UInt8, [CXTypeKind.Char_U] = Primitive.UInt8,
        [CXTypeKind.UChar] = Primitive.UInt8, [CXTypeKind.SChar] = Primitive.Int8,
        [CXTypeKind.Short] = Primitive.Int16, [CXTypeKind.UShort] = Primitive.UInt16,
        [CXTypeKind.Int] = Primitive.Int32, [CXTypeKind.UInt] = Primitive.UInt32,
        [CXTypeKind.LongLong] = Primitive.Int64, [CXTypeKind.ULongLong] = Primitive.UInt64,
        [CXTypeKind.Float] = Primitive.Float, [CXTypeKind.Double] = Primitive.Double,
    };

    private readonly Options _options;
    private readonly nint _unit;
    private readonly string[] _headerLines;
    private readonly HashSet<string> _seen = new(StringComparer.Ordinal);

    private HeaderParser(Options options, nint unit, string[] headerLines) =>
        (_options, _unit, _headerLines) = (options, unit, headerLines);

    public static HeaderModel Parse(Options options)
    {
        var header = options.FullPath(options.Header);
        if (!File.Exists(header))
        {
            throw new GeneratorException($"header not found: {header}");
        }
        List<string> args =
        [
            "-x", "c", "-std=c11",
            // The header documents with plain /* */ comments; by default clang keeps only /** */ ones.
            "-fparse-all-comments",
            "-resource-dir", options.ResourceDir ?? ClangResourceDirectory.Find(),
            .. options.IncludeDirectories.Select(d => "-I" + options.FullPath(d)),
        ];
        var index = clang_createIndex(0, 0);
        try
        {
            var error = clang_parseTranslationUnit2(index, header, [.. args], args.Count, 0, 0,
                DetailedPreprocessingRecord, out var unit);
            if (error != 0)
            {
                throw new GeneratorException($"libclang could not parse {header} (CXErrorCode {error})");
            }
            try
            {
                ThrowOnErrors(unit);
                return new HeaderParser(options, unit, File.ReadAllLines(header)).ParseUnit();
            }
            finally
            {
                clang_disposeTranslationUnit(unit);
            }
        }
        finally
        {
            clang_disposeIndex(index);
        }
    }

    private static void ThrowOnErrors(nint unit)
    {
        var errors = new List<string>();
        for (var i = 0u; i < clang_getNumDiagnostics(unit); i++)
        {
            var diagnostic = clang_getDiagnostic(unit, i);
            if (clang_getDiagnosticSeverity(diagnostic) >= SeverityError)
            {
                errors.Add(ToManaged(clang_formatDiagnostic(diagnostic, clang_defaultDiagnosticDisplayOptions())));
            }
            clang_disposeDiagnostic(diagnostic);
        }
        if (errors.Count > 0)
        {
            throw new GeneratorException("clang reported errors in the header:\n  " + string.Join("\n  ", errors));
        }
    }

    private HeaderModel ParseUnit()
    {
        List<Constant> constants = [];
        List<EnumDecl> enums = [];
        List<StructDecl> structs = [];
        List<OpaqueDecl> opaques = [];
        List<FunctionPointerTypedef> callbacks = [];
        List<FunctionDecl> functions = [];
        List<string> skipped = [];
        var macroPrefix = _options.Prefix.ToUpperInvariant();

        foreach (var cursor in TopLevel(clang_getTranslationUnitCursor(_unit)))
        {
            var name = Spelling(cursor);
            if (!IsFromMainFile(cursor))
            {
                continue;
            }
            if (cursor.Kind == CXCursorKind.MacroDefinition)
            {
                if (name.StartsWith(macroPrefix, StringComparison.Ordinal))
                {
                    if (ParseConstant(cursor, name) is { } constant) constants.Add(constant);
                    else skipped.Add(name);
                }
                continue;
            }
            if (!name.StartsWith(_options.Prefix, StringComparison.Ordinal))
            {
                continue;
            }
            var isDefinition = clang_isCursorDefinition(cursor) != 0;
            switch (cursor.Kind)
            {
                case CXCursorKind.EnumDecl when isDefinition && _seen.Add(name):
                    enums.Add(ParseEnum(cursor, name));
                    break;
                case CXCursorKind.StructDecl when isDefinition && _seen.Add(name):
                    structs.Add(ParseStruct(cursor, name));
                    break;
                case CXCursorKind.StructDecl when clang_Cursor_isNull(clang_getCursorDefinition(cursor)) != 0 && _seen.Add(name):
                    opaques.Add(new OpaqueDecl(name, Doc(cursor)));
                    break;
                case CXCursorKind.TypedefDecl when IsFunctionPointer(clang_getTypedefDeclUnderlyingType(cursor)):
                    var type = (FunctionPointerType)Resolve(clang_getTypedefDeclUnderlyingType(cursor), name, Use.Value);
                    callbacks.Add(new FunctionPointerTypedef(name, type, Doc(cursor)));
                    break;
                case CXCursorKind.FunctionDecl when _seen.Add(name):
                    functions.Add(ParseFunction(cursor, name));
                    break;
                case CXCursorKind.UnionDecl:
                    throw new GeneratorException($"{name}: unions are not supported (no sequential C# layout)");
                case CXCursorKind.VarDecl:
                    throw new GeneratorException($"{name}: global variables cannot be bound by P/Invoke");
            }
        }
        return new HeaderModel(constants, enums, structs, opaques, callbacks, functions, skipped);
    }

    /// <summary>The translation unit's declarations, looking through <c>extern "C" { }</c>.</summary>
    private static IEnumerable<CXCursor> TopLevel(CXCursor parent) =>
        Children(parent).SelectMany(c => c.Kind == CXCursorKind.LinkageSpec ? TopLevel(c) : [c]);

    /// <summary>Object-like macros whose body is one integer literal; null for anything else.</summary>
    private Constant? ParseConstant(CXCursor cursor, string name)
    {
        var tokens = Tokens(_unit, cursor);
        if (clang_Cursor_isMacroFunctionLike(cursor) != 0 || tokens.Count != 2 || tokens[1].Kind != TokenLiteral)
        {
            return null;
        }
        // Rule: no suffix -> int, U -> uint, L/LL -> long, UL/ULL -> ulong; a value that does not fit fails.
        var literal = tokens[1].Text;
        var digits = literal.TrimEnd('u', 'U', 'l', 'L');
        var suffix = literal[digits.Length..].ToLowerInvariant();
        if (suffix is not ("" or "u" or "l" or "ul" or "lu" or "ll" or "ull" or "llu") || !TryParseInteger(digits, out var value))
        {
            return null;
        }
        var (type, max) = (suffix.Contains('u'), suffix.Contains('l')) switch
        {
            (false, false) => (Primitive.Int32, (ulong)int.MaxValue),
            (true, false) => (Primitive.UInt32, uint.MaxValue),
            (false, true) => (Primitive.Int64, (ulong)long.MaxValue),
            (true, true) => (Primitive.UInt64, ulong.MaxValue),
        };
        if (value > max)
        {
            throw new GeneratorException($"{name}: {literal} does not fit in {type}; add a U or LL suffix");
        }
        return new Constant(name, type, value, CommentAbove(Line(cursor)));
    }

    /// <summary>A C integer literal without suffix: 0x hex, 0 octal, or decimal.</summary>
    private static bool TryParseInteger(string digits, out ulong value)
    {
        var (text, radix) = digits.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? (digits[2..], 16)
            : digits.Length > 1 && digits[0] == '0' ? (digits, 8) : (digits, 10);
        try
        {
            value = Convert.ToUInt64(text, radix);
            return true;
        }
        catch (Exception e) when (e is FormatException or OverflowException or ArgumentException)
        {
            value = 0;
            return false;
        }
    }

    private EnumDecl ParseEnum(CXCursor cursor, string name)
    {
        var integer = clang_getEnumDeclIntegerType(cursor);
        if (integer.Kind is not (CXTypeKind.Int or CXTypeKind.UInt))
        {
            throw new GeneratorException($"{name}: underlying type '{Spelling(integer)}' is not int or unsigned int");
        }
        var constants = Children(cursor).Where(c => c.Kind == CXCursorKind.EnumConstantDecl).ToList();
        // C gives an enumerator the type int when its value fits (C11 6.7.2.2), clang an unsigned type
        // otherwise. The enum's own integer type is no guide: clang makes it unsigned int for every enum
        // without negative values. Both are 4 bytes, so either choice matches the ABI.
        var unsigned = constants.Any(c => clang_getCursorType(c).Kind == CXTypeKind.UInt);
        var members = constants.Select(c => new EnumMember(
            Spelling(c),
            unsigned ? (long)clang_getEnumConstantDeclUnsignedValue(c) : clang_getEnumConstantDeclValue(c),
            Doc(c))).ToList();
        return new EnumDecl(name, unsigned, members, Doc(cursor));
    }

    /// <summary>A struct whose fields sit exactly where LayoutKind.Sequential puts them: each at the
    /// next multiple of its alignment, the size rounded up to the largest alignment.</summary>
    private StructDecl ParseStruct(CXCursor cursor, string name)
    {
        var type = clang_getCursorType(cursor);
        var fields = new List<Field>();
        long end = 0, maxAlign = 1;
        foreach (var field in Children(cursor).Where(c => c.Kind == CXCursorKind.FieldDecl))
        {
            var owner = $"{name}.{Spelling(field)}";
            if (clang_Cursor_isBitField(field) != 0)
            {
                throw new GeneratorException($"{owner}: bit-fields have no C# equivalent");
            }
            var fieldType = clang_getCursorType(field);
            var resolved = Resolve(fieldType, owner, Use.Field);
            long offset = clang_Cursor_getOffsetOfField(field) / 8, align = clang_Type_getAlignOf(fieldType);
            if (offset != AlignUp(end, align))
            {
                throw new GeneratorException(
                    $"{owner}: clang puts it at byte {offset}, a sequential layout at {AlignUp(end, align)} (packed or over-aligned?)");
            }
            fields.Add(new Field(Spelling(field), resolved, offset, Doc(field)));
            end = offset + clang_Type_getSizeOf(fieldType);
            maxAlign = Math.Max(maxAlign, align);
        }
        var size = clang_Type_getSizeOf(type);
        if (fields.Count == 0 || size != AlignUp(end, maxAlign) || clang_Type_getAlignOf(type) != maxAlign)
        {
            throw new GeneratorException($"{name}: its size ({size}) or alignment is not what a sequential layout of its fields gives");
        }
        return new StructDecl(name, size, fields, Doc(cursor));
    }

    private static long AlignUp(long value, long align) => (value + align - 1) / align * align;

    private FunctionDecl ParseFunction(CXCursor cursor, string name)
    {
        if (clang_Cursor_getStorageClass(cursor) == StorageClassStatic)
        {
            throw new GeneratorException($"{name}: a static function is not exported by the library");
        }
        CheckSignature(clang_getCursorType(cursor), name);
        var parameters = new List<Parameter>();
        for (var i = 0; i < clang_Cursor_getNumArguments(cursor); i++)
        {
            var argument = clang_Cursor_getArgument(cursor, (uint)i);
            var parameterName = Spelling(argument) is { Length: > 0 } spelled ? spelled : $"arg{i}";
            parameters.Add(new Parameter(parameterName,
                Resolve(clang_getCursorType(argument), $"{name} (parameter {parameterName})", Use.Value)));
        }
        var result = Resolve(clang_getCursorResultType(cursor), $"{name} (result)", Use.Result);
        return new FunctionDecl(name, result, parameters, Doc(cursor));
    }

    private static void CheckSignature(CXType function, string owner)
    {
        if (clang_getCanonicalType(function).Kind == CXTypeKind.FunctionNoProto)
        {
            throw new GeneratorException($"{owner}: declared without a prototype; write (void) for no parameters");
        }
        if (clang_isFunctionTypeVariadic(function) != 0)
        {
            throw new GeneratorException($"{owner}: variadic functions cannot be bound");
        }
        if (clang_getFunctionTypeCallingConv(function) != CallingConvC)
        {
            throw new GeneratorException($"{owner}: only the C calling convention is supported");
        }
    }

    private static bool IsFunction(CXType type) =>
        clang_getCanonicalType(type).Kind is CXTypeKind.FunctionProto or CXTypeKind.FunctionNoProto;

    private static bool IsFunctionPointer(CXType type) =>
        clang_getCanonicalType(type).Kind == CXTypeKind.Pointer && IsFunction(clang_getPointeeType(type));

    /// <summary>Maps a C type, looking through typedefs (except the fixed-width ones) and elaborated
    /// spellings (<c>struct x</c>). Throws, naming owner and the C type, for anything else.</summary>
    private TypeRef Resolve(CXType type, string owner, Use use)
    {
        switch (type.Kind)
        {
            case CXTypeKind.Typedef:
                var typedefName = ToManaged(clang_getTypedefName(type));
                if (NamedTypedefs.TryGetValue(typedefName, out var fixedWidth))
                {
                    return new PrimitiveType(fixedWidth);
                }
                if (typedefName == "wchar_t") // int here, unsigned short on Windows
                {
                    break;
                }
                return Resolve(clang_getTypedefDeclUnderlyingType(clang_getTypeDeclaration(type)), owner, use);
            case CXTypeKind.Elaborated:
                return Resolve(clang_Type_getNamedType(type), owner, use);
            case CXTypeKind.Pointer:
                var pointee = clang_getPointeeType(type);
                if (!IsFunction(pointee))
                {
                    return new PointerType(Resolve(pointee, owner, Use.Pointee));
                }
                CheckSignature(pointee, owner);
                var parameters = Enumerable.Range(0, clang_getNumArgTypes(pointee))
                    .Select(i => Resolve(clang_getArgType(pointee, (uint)i), owner, Use.Value)).ToList();
                return new FunctionPointerType(Resolve(clang_getResultType(pointee), owner, Use.Result), parameters);
            case CXTypeKind.Enum:
                return new EnumRef(EmittedTagName(type, owner));
            case CXTypeKind.Record when clang_getTypeDeclaration(type).Kind == CXCursorKind.StructDecl:
                var opaque = clang_Cursor_isNull(clang_getCursorDefinition(clang_getTypeDeclaration(type))) != 0;
                if (opaque && use != Use.Pointee)
                {
                    throw new GeneratorException($"{owner}: the opaque type '{Spelling(type)}' can only be used through a pointer");
                }
                return new StructRef(EmittedTagName(type, owner));
            case CXTypeKind.ConstantArray when use == Use.Field:
                if (Resolve(clang_getArrayElementType(type), owner, Use.Field) is PrimitiveType { Kind: not (Primitive.NInt or Primitive.NUInt) } element)
                {
                    return new FixedArrayType(element.Kind, clang_getArraySize(type));
                }
                break;
            case CXTypeKind.Void when use is Use.Pointee or Use.Result:
                return new PrimitiveType(Primitive.Void);
        }
        if (Builtins.TryGetValue(type.Kind, out var primitive))
        {
            return new PrimitiveType(primitive);
        }
        var hint = type.Kind is CXTypeKind.Long or CXTypeKind.ULong ? " (long is 32-bit on Windows; use int32_t or int64_t)" : "";
        throw new GeneratorException($"{owner}: cannot map the C type '{Spelling(type)}' to C#{hint}");
    }

    /// <summary>The tag name of an enum or struct that this generator also emits.</summary>
    private string EmittedTagName(CXType type, string owner)
    {
        var declaration = clang_getTypeDeclaration(type);
        var name = Spelling(declaration);
        if (clang_Cursor_isAnonymous(declaration) != 0 || !name.StartsWith(_options.Prefix, StringComparison.Ordinal)
            || !IsFromMainFile(declaration))
        {
            throw new GeneratorException(
                $"{owner}: '{Spelling(type)}' is not emitted (it must be a named {_options.Prefix}* type declared in the header)");
        }
        return name;
    }

    private static string? Doc(CXCursor cursor) => DocComment.Clean(ToManaged(clang_Cursor_getRawCommentText(cursor)));

    /// <summary>The comment on the lines right above a 1-based line; libclang attaches none to macros.</summary>
    private string? CommentAbove(int line)
    {
        var last = line - 2;
        if (last < 0 || last >= _headerLines.Length) return null;
        var first = last;
        if (_headerLines[last].TrimEnd().EndsWith("*/", StringComparison.Ordinal))
        {
            while (first > 0 && !_headerLines[first].Contains("/*", StringComparison.Ordinal)) first--;
        }
        else if (_headerLines[last].TrimStart().StartsWith("//", StringComparison.Ordinal))
        {
            while (first > 0 && _headerLines[first - 1].TrimStart().StartsWith("//", StringComparison.Ordinal)) first--;
        }
        else
        {
            return null;
        }
        return DocComment.Clean(string.Join('\n', _headerLines[first..(last + 1)]));
    }
}
