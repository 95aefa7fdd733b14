
namespace Infinite.Native.Tests;

public sealed class DeviceTests
{
    [Fact]
    public void The_cpu_is_always_listed_with_its_memory_and_cores()
    {
        DeviceInfo cpu = Assert.Single(Device.List(), d => d.Kind == DeviceKind.Cpu);
        Assert.Equal("cpu:0", cpu.Id);
        Assert.False(string.IsNullOrWhiteSpace(cpu.Name));
        Assert.True(cpu.ComputeUnits >= 1);
        Assert.True(cpu.TotalMemory > 0);
        Assert.InRange(cpu.FreeMemory, 1UL, cpu.TotalMemory);
        Assert.Null(cpu.Capability);
    }

    [Fact]
    public void An_open_device_describes_itself()
    {
        using var device = Device.Cpu();
        Assert.Equal(Device.Describe(DeviceKind.Cpu).Name, device.Info.Name);
        Assert.Equal("cpu:0", device.ToString());
        device.Synchronize();
    }

    [Fact]
    public void Cuda_absence_is_explained_not_crashed()
    {
        string? reason = Device.UnavailableReason(DeviceKind.Cuda);
        if (reason is null)
        {
            Assert.True(Device.Count(DeviceKind.Cuda) > 0);
            return;
        }
        Assert.Equal(0, Device.Count(DeviceKind.Cuda));
        Assert.Contains("CUDA", reason, StringComparison.OrdinalIgnoreCase);
        var e = Assert.Throws<InfiniteException>(() => Device.Open(DeviceKind.Cuda));
        Assert.Equal(InfiniteStatus.BackendUnavailable, e.Status);
    }

    [Fact]
    public void The_library_reports_its_versions_and_build()
    {
        Assert.Equal(InfiniteLibrary.BindingsAbiVersion, InfiniteLibrary.AbiVersion);
        Assert.Matches(@"^\d+\.\d+\.\d+", InfiniteLibrary.Version);
        Assert.Contains("cuda", InfiniteLibrary.BuildInfo, StringComparison.OrdinalIgnoreCase);
        Assert.NotNull(NativeLibraryResolver.LoadedPath);
    }
}
