namespace Infinite.Native.Tests;

public sealed class DeviceBufferTests
{
    [Fact]
    public void Random_data_round_trips()
    {
        var random = new Random(1234);
        var data = new float[10_000];
        for (int i = 0; i < data.Length; i++)
        {
            data[i] = (float)(random.NextDouble() * 2 - 1);
        }
        using var device = Device.Cpu();
        using var buffer = device.Allocate<float>(data.Length);
        buffer.Fill(float.NaN);
        buffer.Write<float>(data);
        Assert.Equal(data, buffer.ToArray<float>());
    }

    [Fact]
    public void Fill_poisons_exactly_the_requested_range()
    {
        using var device = Device.Cpu();
        using var buffer = device.Allocate<uint>(16);
        buffer.Fill(0x11111111u);
        buffer.Fill(0x7FC00001u, byteOffset: 4 * sizeof(uint), count: 8);
        uint[] values = buffer.ToArray<uint>();
        for (int i = 0; i < values.Length; i++)
        {
            Assert.Equal(i is >= 4 and < 12 ? 0x7FC00001u : 0x11111111u, values[i]);
        }
    }

    [Fact]
    public void Copy_between_buffers_moves_the_named_range()
    {
        using var device = Device.Cpu();
        using var source = device.Allocate<long>(32);
        using var target = device.Allocate<long>(32);
        long[] data = Enumerable.Range(0, 32).Select(i => (long)i * 7919).ToArray();
        source.Write<long>(data);
        target.Fill(-1L);

        target.CopyFrom(source, sourceOffset: 8 * 8, destinationOffset: 0, bytes: 8 * 8);

        long[] copied = target.ToArray<long>();
        Assert.Equal(data[8..16], copied[..8]);
        Assert.All(copied[8..], v => Assert.Equal(-1L, v));
    }

    [Fact]
    public void Reading_into_a_typed_span_at_an_offset()
    {
        using var device = Device.Cpu();
        using var buffer = device.Allocate<double>(4);
        buffer.Write<double>([1.5, 2.5, 3.5, 4.5]);
        var tail = new double[2];
        buffer.Read<double>(tail, byteOffset: 2 * sizeof(double));
        Assert.Equal([3.5, 4.5], tail);
    }

    [Fact]
    public void Negative_offsets_are_refused_in_managed_code()
    {
        using var device = Device.Cpu();
        using var buffer = device.Allocate(8);
        Assert.Throws<ArgumentOutOfRangeException>(() => buffer.Write<byte>(new byte[1], -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => device.Allocate(0));
    }
}
