namespace Infinite.Models;

/// <summary>ggml tensor type ids as GGUF stores them, their names, and the ones Infinite reads.</summary>
public static class GgmlTypes
{
    public const uint F32 = 0, F16 = 1, Q8_0 = 8, BF16 = 30;

    private static readonly string?[] Names =
    [
        "F32", "F16", "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0", "Q5_1", "Q8_0", "Q8_1",
        "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S",
        "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS", "I8", "I16", "I32", "I64", "F64", "IQ1_M",
        "BF16", "Q4_0_4_4", "Q4_0_4_8", "Q4_0_8_8", "TQ1_0", "TQ2_0", "IQ4_NL_4_4", "IQ4_NL_4_8", "IQ4_NL_8_8", "MXFP4",
    ];

    /// <summary>The ggml name of a type id ("Q4_K"), or "unknown" for ids ggml does not define.</summary>
    public static string Name(uint id) => id < Names.Length && Names[id] is { } n ? n : "unknown";

    /// <summary>The Infinite storage type of a ggml type id, or null when Infinite cannot read it.</summary>
    public static TensorType? ToTensorType(uint id) => id switch
    {
        F32 => TensorType.F32,
        F16 => TensorType.F16,
        BF16 => TensorType.BF16,
        Q8_0 => TensorType.Q8_0,
        _ => null,
    };

    public static uint FromTensorType(TensorType type) => type switch
    {
        TensorType.F32 => F32,
        TensorType.F16 => F16,
        TensorType.BF16 => BF16,
        TensorType.Q8_0 => Q8_0,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "not a tensor type"),
    };
}
