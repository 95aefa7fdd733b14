using System.Buffers.Binary;

namespace Infinite.Models;

/// <summary>Byte sizes of stored tensors and conversion between float32 and F16 / BF16 / Q8_0.</summary>
public static class TensorEncoding
{
    /// <summary>Elements per Q8_0 block; a block is an f16 scale followed by 32 int8 values.</summary>
    public const int Q8BlockSize = 32;
    public const int Q8BlockBytes = 2 + Q8BlockSize;

    /// <summary>Bytes of <paramref name="elements"/> values of <paramref name="type"/> (Q8_0: a multiple of 32).</summary>
    public static long ByteCount(TensorType type, long elements) => type switch
    {
        TensorType.F32 => elements * 4,
        TensorType.F16 or TensorType.BF16 => elements * 2,
        TensorType.Q8_0 => elements / Q8BlockSize * Q8BlockBytes,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "not a tensor type"),
    };

    /// <summary>Round-to-nearest-even float32 to bfloat16 bits (NaN kept quiet).</summary>
    public static ushort ToBFloat16(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value)) return (ushort)((bits >> 16) | 0x40);
        bits += 0x7FFFu + ((bits >> 16) & 1u);
        return (ushort)(bits >> 16);
    }

    public static float FromBFloat16(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    /// <summary>Stores <paramref name="values"/> as <paramref name="type"/>; Q8_0 uses scale = max|x|/127 per block.</summary>
    public static void Encode(ReadOnlySpan<float> values, TensorType type, Span<byte> dest)
    {
        long need = ByteCount(type, values.Length);
        if (type == TensorType.Q8_0 && values.Length % Q8BlockSize != 0)
            throw new ArgumentException($"Q8_0 needs a multiple of {Q8BlockSize} values, got {values.Length}", nameof(values));
        if (dest.Length < need)
            throw new ArgumentException($"destination holds {dest.Length} bytes, {need} needed", nameof(dest));
        switch (type)
        {
            case TensorType.F32:
                for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(dest[(4 * i)..], values[i]);
                break;
            case TensorType.F16:
                for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteHalfLittleEndian(dest[(2 * i)..], (Half)values[i]);
                break;
            case TensorType.BF16:
                for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteUInt16LittleEndian(dest[(2 * i)..], ToBFloat16(values[i]));
                break;
            case TensorType.Q8_0:
                for (int b = 0; b < values.Length / Q8BlockSize; b++)
                {
                    var block = values.Slice(b * Q8BlockSize, Q8BlockSize);
                    var outBlock = dest.Slice(b * Q8BlockBytes, Q8BlockBytes);
                    float amax = 0;
                    foreach (float v in block) amax = MathF.Max(amax, MathF.Abs(v));
                    // Quantize against the f16-rounded scale so that decoding with the stored scale is within scale/2.
                    Half scale = (Half)(amax / 127f);
                    float d = (float)scale;
                    float inv = d == 0 ? 0 : 1f / d;
                    BinaryPrimitives.WriteHalfLittleEndian(outBlock, scale);
                    for (int i = 0; i < Q8BlockSize; i++)
                        outBlock[2 + i] = (byte)(sbyte)Math.Clamp(MathF.Round(block[i] * inv), -127f, 127f);
                }
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(type), type, "not a tensor type");
        }
    }

    /// <summary>Converts stored bytes of <paramref name="type"/> to float32 into <paramref name="dest"/>.</summary>
    public static void Decode(ReadOnlySpan<byte> source, TensorType type, Span<float> dest)
    {
        long need = ByteCount(type, dest.Length);
        if (type == TensorType.Q8_0 && dest.Length % Q8BlockSize != 0)
            throw new ArgumentException($"Q8_0 needs a multiple of {Q8BlockSize} values, got {dest.Length}", nameof(dest));
        if (source.Length < need)
            throw new ArgumentException($"source holds {source.Length} bytes, {need} needed", nameof(source));
        switch (type)
        {
            case TensorType.F32:
                for (int i = 0; i < dest.Length; i++) dest[i] = BinaryPrimitives.ReadSingleLittleEndian(source[(4 * i)..]);
                break;
            case TensorType.F16:
                for (int i = 0; i < dest.Length; i++) dest[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(source[(2 * i)..]);
                break;
            case TensorType.BF16:
                for (int i = 0; i < dest.Length; i++) dest[i] = FromBFloat16(BinaryPrimitives.ReadUInt16LittleEndian(source[(2 * i)..]));
                break;
            case TensorType.Q8_0:
                for (int b = 0; b < dest.Length / Q8BlockSize; b++)
                {
                    var block = source.Slice(b * Q8BlockBytes, Q8BlockBytes);
                    float d = (float)BinaryPrimitives.ReadHalfLittleEndian(block);
                    for (int i = 0; i < Q8BlockSize; i++) dest[b * Q8BlockSize + i] = d * (sbyte)block[2 + i];
                }
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(type), type, "not a tensor type");
        }
    }
}
