using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Infinite.Bindings.Generator;

// The subset of libclang's C API (clang-c/Index.h, stable since libclang 9) the parser needs.
// The structs mirror the C ones field for field; they are blittable and passed by value.

[StructLayout(LayoutKind.Sequential)]
internal struct CXString { public nint Data; public uint Flags; }

[StructLayout(LayoutKind.Sequential)]
internal struct CXCursor { public CXCursorKind Kind; public int XData; public nint Data0, Data1, Data2; }

[StructLayout(LayoutKind.Sequential)]
internal struct CXType { public CXTypeKind Kind; public nint Data0, Data1; }

[StructLayout(LayoutKind.Sequential)]
internal struct CXSourceLocation { public nint Ptr0, Ptr1; public uint IntData; }

[StructLayout(LayoutKind.Sequential)]
internal struct CXSourceRange { public nint Ptr0, Ptr1; public uint Begin, End; }

[StructLayout(LayoutKind.Sequential)]
internal struct CXToken { public uint Int0, Int1, Int2, Int3; public nint Ptr; }

internal enum CXCursorKind
{
    StructDecl = 2, UnionDecl = 3, EnumDecl = 5, FieldDecl = 6, EnumConstantDecl = 7, FunctionDecl = 8,
    VarDecl = 9, TypedefDecl = 20, LinkageSpec = 23, MacroDefinition = 501,
}

internal enum CXTypeKind
{
    Invalid = 0, Unexposed = 1, Void = 2, Bool = 3, Char_U = 4, UChar = 5, UShort = 8, UInt = 9, ULong = 10,
    ULongLong = 11, Char_S = 13, SChar = 14, Short = 16, Int = 17, Long = 18, LongLong = 19, Float = 21,
    Double = 22, Pointer = 101, Record = 105, Enum = 106, Typedef = 107, FunctionNoProto = 110,
    FunctionProto = 111, ConstantArray = 112, Elaborated = 119,
}

internal static unsafe partial class LibClang
{
    private const string Name = "libclang";
    private static readonly string[] Candidates = ["libclang-14.so.1", "libclang.so.1", "libclang.so"];

    public const uint DetailedPreprocessingRecord = 0x01;
    public const int SeverityError = 3;
    public const int CallingConvC = 1;
    public const int StorageClassStatic = 3;
    public const int TokenLiteral = 3;

    /// <summary>Loads libclang from the first candidate name that the system can load and routes
    /// every <c>[LibraryImport("libclang")]</c> below to it.</summary>
    public static void Load()
    {
        foreach (var candidate in Candidates)
        {
            if (NativeLibrary.TryLoad(candidate, out var handle))
            {
                NativeLibrary.SetDllImportResolver(typeof(LibClang).Assembly,
                    (name, _, _) => name == Name ? handle : 0);
                return;
            }
        }
        throw new GeneratorException(
            $"cannot load libclang; tried {string.Join(", ", Candidates)} (Debian: apt-get install libclang1-14)");
    }

    // ---- friendly wrappers --------------------------------------------------------------------

    public static string ToManaged(CXString s)
    {
        try { return Marshal.PtrToStringUTF8((nint)clang_getCString(s)) ?? ""; }
        finally { clang_disposeString(s); }
    }

    public static string Spelling(CXCursor c) => ToManaged(clang_getCursorSpelling(c));
    public static string Spelling(CXType t) => ToManaged(clang_getTypeSpelling(t));

    /// <summary>The cursor's children in source order (clang_visitChildren, one level deep).</summary>
    public static List<CXCursor> Children(CXCursor parent)
    {
        var children = new List<CXCursor>();
        var handle = GCHandle.Alloc(children);
        try { clang_visitChildren(parent, &CollectChild, GCHandle.ToIntPtr(handle)); }
        finally { handle.Free(); }
        return children;
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int CollectChild(CXCursor cursor, CXCursor parent, nint clientData)
    {
        ((List<CXCursor>)GCHandle.FromIntPtr(clientData).Target!).Add(cursor);
        return 1; // CXChildVisit_Continue: siblings only; callers descend where they need to.
    }

    /// <summary>1-based line of the cursor's spelling location.</summary>
    public static int Line(CXCursor c)
    {
        uint line, column, offset;
        nint file;
        clang_getSpellingLocation(clang_getCursorLocation(c), &file, &line, &column, &offset);
        return (int)line;
    }

    /// <summary>The spellings of the tokens the cursor covers (for a macro: its name, then its body).</summary>
    public static List<(int Kind, string Text)> Tokens(nint unit, CXCursor c)
    {
        CXToken* tokens;
        uint count;
        clang_tokenize(unit, clang_getCursorExtent(c), &tokens, &count);
        var result = new List<(int, string)>((int)count);
        for (var i = 0; i < count; i++)
        {
            result.Add((clang_getTokenKind(tokens[i]), ToManaged(clang_getTokenSpelling(unit, tokens[i]))));
        }
        clang_disposeTokens(unit, tokens, count);
        return result;
    }

    // ---- the C API ----------------------------------------------------------------------------

    [LibraryImport(Name)] public static partial nint clang_createIndex(int excludePch, int displayDiagnostics);
    [LibraryImport(Name)] public static partial void clang_disposeIndex(nint index);

    [LibraryImport(Name, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int clang_parseTranslationUnit2(nint index, string sourceFile, string[] args, int argCount,
        nint unsavedFiles, uint unsavedCount, uint options, out nint unit);

    [LibraryImport(Name)] public static partial void clang_disposeTranslationUnit(nint unit);
    [LibraryImport(Name)] public static partial CXString clang_getClangVersion();
    [LibraryImport(Name)] private static partial byte* clang_getCString(CXString s);
    [LibraryImport(Name)] private static partial void clang_disposeString(CXString s);

    [LibraryImport(Name)] public static partial uint clang_getNumDiagnostics(nint unit);
    [LibraryImport(Name)] public static partial nint clang_getDiagnostic(nint unit, uint index);
    [LibraryImport(Name)] public static partial int clang_getDiagnosticSeverity(nint diagnostic);
    [LibraryImport(Name)] public static partial uint clang_defaultDiagnosticDisplayOptions();
    [LibraryImport(Name)] public static partial CXString clang_formatDiagnostic(nint diagnostic, uint options);
    [LibraryImport(Name)] public static partial void clang_disposeDiagnostic(nint diagnostic);

    [LibraryImport(Name)] public static partial CXCursor clang_getTranslationUnitCursor(nint unit);
    [LibraryImport(Name)] private static partial uint clang_visitChildren(CXCursor parent,
        delegate* unmanaged[Cdecl]<CXCursor, CXCursor, nint, int> visitor, nint clientData);
    [LibraryImport(Name)] private static partial CXString clang_getCursorSpelling(CXCursor c);
    [LibraryImport(Name)] public static partial CXString clang_Cursor_getRawCommentText(CXCursor c);
    [LibraryImport(Name)] private static partial CXSourceLocation clang_getCursorLocation(CXCursor c);
    [LibraryImport(Name)] private static partial CXSourceRange clang_getCursorExtent(CXCursor c);
    [LibraryImport(Name)] public static partial int clang_Location_isFromMainFile(CXSourceLocation location);
    [LibraryImport(Name)] private static partial void clang_getSpellingLocation(CXSourceLocation location,
        nint* file, uint* line, uint* column, uint* offset);
    public static bool IsFromMainFile(CXCursor c) => clang_Location_isFromMainFile(clang_getCursorLocation(c)) != 0;

    [LibraryImport(Name)] public static partial uint clang_isCursorDefinition(CXCursor c);
    [LibraryImport(Name)] public static partial CXCursor clang_getCursorDefinition(CXCursor c);
    [LibraryImport(Name)] public static partial int clang_Cursor_isNull(CXCursor c);
    [LibraryImport(Name)] public static partial uint clang_Cursor_isAnonymous(CXCursor c);
    [LibraryImport(Name)] public static partial uint clang_Cursor_isBitField(CXCursor c);
    [LibraryImport(Name)] public static partial uint clang_Cursor_isMacroFunctionLike(CXCursor c);
    [LibraryImport(Name)] public static partial int clang_Cursor_getStorageClass(CXCursor c);
    [LibraryImport(Name)] public static partial int clang_Cursor_getNumArguments(CXCursor c);
    [LibraryImport(Name)] public static partial CXCursor clang_Cursor_getArgument(CXCursor c, uint index);
    [LibraryImport(Name)] public static partial long clang_Cursor_getOffsetOfField(CXCursor c);
    [LibraryImport(Name)] public static partial CXType clang_getCursorType(CXCursor c);
    [LibraryImport(Name)] public static partial CXType clang_getCursorResultType(CXCursor c);
    [LibraryImport(Name)] public static partial CXType clang_getEnumDeclIntegerType(CXCursor c);
    [LibraryImport(Name)] public static partial long clang_getEnumConstantDeclValue(CXCursor c);
    [LibraryImport(Name)] public static partial ulong clang_getEnumConstantDeclUnsignedValue(CXCursor c);
    [LibraryImport(Name)] public static partial CXType clang_getTypedefDeclUnderlyingType(CXCursor c);

    [LibraryImport(Name)] private static partial CXString clang_getTypeSpelling(CXType t);
    [LibraryImport(Name)] public static partial CXType clang_getCanonicalType(CXType t);
    [LibraryImport(Name)] public static partial CXType clang_getPointeeType(CXType t);
    [LibraryImport(Name)] public static partial CXType clang_Type_getNamedType(CXType t);
    [LibraryImport(Name)] public static partial CXCursor clang_getTypeDeclaration(CXType t);
    [LibraryImport(Name)] public static partial CXString clang_getTypedefName(CXType t);
    [LibraryImport(Name)] public static partial CXType clang_getResultType(CXType t);
    [LibraryImport(Name)] public static partial int clang_getNumArgTypes(CXType t);
    [LibraryImport(Name)] public static partial CXType clang_getArgType(CXType t, uint index);
    [LibraryImport(Name)] public static partial uint clang_isFunctionTypeVariadic(CXType t);
    [LibraryImport(Name)] public static partial int clang_getFunctionTypeCallingConv(CXType t);
    [LibraryImport(Name)] public static partial CXType clang_getArrayElementType(CXType t);
    [LibraryImport(Name)] public static partial long clang_getArraySize(CXType t);
    [LibraryImport(Name)] public static partial long clang_Type_getSizeOf(CXType t);
    [LibraryImport(Name)] public static partial long clang_Type_getAlignOf(CXType t);

    [LibraryImport(Name)] private static partial void clang_tokenize(nint unit, CXSourceRange range,
        CXToken** tokens, uint* count);
    [LibraryImport(Name)] private static partial int clang_getTokenKind(CXToken token);
    [LibraryImport(Name)] private static partial CXString clang_getTokenSpelling(nint unit, CXToken token);
    [LibraryImport(Name)] private static partial void clang_disposeTokens(nint unit, CXToken* tokens, uint count);
}
