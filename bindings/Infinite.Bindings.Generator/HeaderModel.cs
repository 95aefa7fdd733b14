namespace Infinite.Bindings.Generator;

// What the parser found in the header, in declaration order, with C names. It is independent of
// libclang and of C#: the parser has already rejected everything the writers could not express.

/// <summary>Fixed-size scalar types, after C's spellings are resolved (char and _Bool are UInt8,
/// size_t is NUInt, ptrdiff_t/intptr_t are NInt).</summary>
internal enum Primitive { Void, Int8, UInt8, Int16, UInt16, Int32, UInt32, Int64, UInt64, NInt, NUInt, Float, Double }

internal abstract record TypeRef;
internal sealed record PrimitiveType(Primitive Kind) : TypeRef;
internal sealed record PointerType(TypeRef Pointee) : TypeRef;
/// <summary>A struct or opaque type by its C tag name.</summary>
internal sealed record StructRef(string Name) : TypeRef;
/// <summary>An enum by its C tag name (the writer applies --remap).</summary>
internal sealed record EnumRef(string Name) : TypeRef;
/// <summary>An inline array; only ever a struct field with a primitive element.</summary>
internal sealed record FixedArrayType(Primitive Element, long Length) : TypeRef;
/// <summary>A pointer to a cdecl function.</summary>
internal sealed record FunctionPointerType(TypeRef Return, IReadOnlyList<TypeRef> Parameters) : TypeRef;

internal sealed record Constant(string Name, Primitive Type, ulong Value, string? Doc);
internal sealed record EnumMember(string Name, long Value, string? Doc);
internal sealed record EnumDecl(string Name, bool Unsigned, IReadOnlyList<EnumMember> Members, string? Doc);
/// <summary>A field; Offset is in bytes, as clang laid it out.</summary>
internal sealed record Field(string Name, TypeRef Type, long Offset, string? Doc);
internal sealed record StructDecl(string Name, long Size, IReadOnlyList<Field> Fields, string? Doc);
/// <summary>Declared but never defined: only ever used through pointers (a handle).</summary>
internal sealed record OpaqueDecl(string Name, string? Doc);
internal sealed record FunctionPointerTypedef(string Name, FunctionPointerType Type, string? Doc);
internal sealed record Parameter(string Name, TypeRef Type);
internal sealed record FunctionDecl(string Name, TypeRef Return, IReadOnlyList<Parameter> Parameters, string? Doc);

internal sealed record HeaderModel(
    IReadOnlyList<Constant> Constants,
    IReadOnlyList<EnumDecl> Enums,
    IReadOnlyList<StructDecl> Structs,
    IReadOnlyList<OpaqueDecl> Opaques,
    IReadOnlyList<FunctionPointerTypedef> Callbacks,
    IReadOnlyList<FunctionDecl> Functions,
    IReadOnlyList<string> SkippedMacros);
