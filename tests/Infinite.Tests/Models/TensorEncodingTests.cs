using Infinite.Models;

namespace Infinite.Tests.Models;

public sealed class TensorEncodingTests
{
    private static float[] RandomValues(int seed, int n)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)((rng.NextDouble() * 2 - 1) * Math.Pow(10, rng.Next(-3, 3)))).ToArray();
    }

    [Fact]
    public void F16_and_BF16_round_to_nearest_within_half_an_ulp()
    {
        var x = RandomValues(1, 4096);
        var f16 = new byte[x.Length * 2];
        var bf16 = new byte[x.Length * 2];
        TensorEncoding.Encode(x, TensorType.F16, f16);
        TensorEncoding.Encode(x, TensorType.BF16, bf16);
        var y16 = new float[x.Length];
        var yb = new float[x.Length];
        TensorEncoding.Decode(f16, TensorType.F16, y16);
        TensorEncoding.Decode(bf16, TensorType.BF16, yb);
        for (int i = 0; i < x.Length; i++)
        {
            // f16 has 10 mantissa bits (subnormals below 6.1e-5 have a fixed step of 2^-24), bf16 has 7.
            Assert.True(Math.Abs(x[i] - y16[i]) <= Math.Max(Math.Abs(x[i]) * Math.Pow(2, -11), Math.Pow(2, -25)), $"f16 {x[i]} -> {y16[i]}");
            Assert.True(Math.Abs(x[i] - yb[i]) <= Math.Abs(x[i]) * Math.Pow(2, -8), $"bf16 {x[i]} -> {yb[i]}");
            Assert.Equal(0u, BitConverter.SingleToUInt32Bits(yb[i]) & 0xFFFF);
        }
    }

    [Fact]
    public void Q8_0_blocks_hold_an_f16_scale_of_max_over_127_and_decode_within_half_a_step()
    {
        var x = RandomValues(2, 32 * 64);
        var q = new byte[TensorEncoding.ByteCount(TensorType.Q8_0, x.Length)];
        Assert.Equal(34 * 64, q.Length);
        TensorEncoding.Encode(x, TensorType.Q8_0, q);
        var y = new float[x.Length];
        TensorEncoding.Decode(q, TensorType.Q8_0, y);
        for (int b = 0; b < 64; b++)
        {
            float amax = x.Skip(b * 32).Take(32).Max(MathF.Abs);
            float scale = amax / 127;
            float stored = (float)BitConverter.ToHalf(q, b * 34);
            Assert.True(MathF.Abs(stored - scale) <= scale * 1e-3f, $"block {b} scale {stored} vs {scale}");
            for (int i = b * 32; i < b * 32 + 32; i++)
                Assert.True(MathF.Abs(x[i] - y[i]) <= scale / 2 * 1.001f, $"element {i}: {x[i]} -> {y[i]} (scale {scale})");
        }
    }

    [Fact]
    public void Q8_0_needs_whole_blocks()
    {
        Assert.Throws<ArgumentException>(() => TensorEncoding.Encode(new float[31], TensorType.Q8_0, new byte[64]));
        Assert.Throws<ArgumentException>(() => TensorEncoding.Decode(new byte[33], TensorType.Q8_0, new float[32]));
    }
}
