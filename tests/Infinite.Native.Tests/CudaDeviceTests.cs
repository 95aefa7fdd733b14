
namespace Infinite.Native.Tests;

public sealed class CudaDeviceTests
{
    [CudaFact]
    public void A_gpu_describes_its_capability_and_memory()
    {
        DeviceInfo gpu = Device.Describe(DeviceKind.Cuda, 0);
        Assert.NotNull(gpu.Capability);
        Assert.True(gpu.Capability!.Major >= 7);
        Assert.True(gpu.ComputeUnits > 0);
        Assert.InRange(gpu.FreeMemory, 1UL, gpu.TotalMemory);
    }

    [CudaFact]
    public void Data_round_trips_through_gpu_memory_and_back_to_the_cpu()
    {
        var random = new Random(99);
        var data = new float[1 << 16];
        for (int i = 0; i < data.Length; i++)
        {
            data[i] = (float)random.NextDouble();
        }
        using var gpu = Device.Open(DeviceKind.Cuda, 0);
        using var cpu = Device.Cpu();
        using var onGpu = gpu.Allocate<float>(data.Length);
        using var back = cpu.Allocate<float>(data.Length);
        onGpu.Fill(float.NaN);
        onGpu.Write<float>(data);
        back.CopyFrom(onGpu);
        Assert.Equal(data, back.ToArray<float>());
    }

    [CudaFact]
    public void The_fill_kernel_writes_each_pattern_size()
    {
        using var gpu = Device.Open(DeviceKind.Cuda, 0);
        using var buffer = gpu.Allocate(1000);
        buffer.Fill((byte)0xAB);
        Assert.All(buffer.ToArray<byte>(), b => Assert.Equal(0xAB, b));
        buffer.Fill((ushort)0xBEEF, count: 500);
        Assert.All(buffer.ToArray<ushort>(), v => Assert.Equal(0xBEEF, v));
        buffer.Fill(0xDEADBEEFu, count: 250);
        Assert.All(buffer.ToArray<uint>(), v => Assert.Equal(0xDEADBEEFu, v));
        buffer.Fill(0x0123456789ABCDEFUL, count: 125);
        Assert.All(buffer.ToArray<ulong>(), v => Assert.Equal(0x0123456789ABCDEFUL, v));
    }
}
