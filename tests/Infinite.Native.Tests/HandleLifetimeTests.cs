using System.Runtime.CompilerServices;

namespace Infinite.Native.Tests;

public sealed class HandleLifetimeTests
{
    [Fact]
    public void Dispose_releases_each_handle_exactly_once()
    {
        LiveObjects before = InfiniteLibrary.GetLiveObjects();
        long devicesReleased = DeviceHandle.ReleasedCount;
        long buffersReleased = BufferHandle.ReleasedCount;

        var device = Device.Cpu();
        var buffer = device.Allocate(4096);
        Assert.Equal(before with { Devices = before.Devices + 1, Buffers = before.Buffers + 1, BufferBytes = before.BufferBytes + 4096 },
            InfiniteLibrary.GetLiveObjects());

        buffer.Dispose();
        buffer.Dispose();
        device.Dispose();
        device.Dispose();

        Assert.Equal(before, InfiniteLibrary.GetLiveObjects());
        Assert.Equal(devicesReleased + 1, DeviceHandle.ReleasedCount);
        Assert.Equal(buffersReleased + 1, BufferHandle.ReleasedCount);
    }

    [Fact]
    public void A_device_disposed_before_its_buffer_stays_alive_until_the_buffer_goes()
    {
        LiveObjects before = InfiniteLibrary.GetLiveObjects();
        var device = Device.Cpu();
        var buffer = device.Allocate<int>(8);

        device.Dispose();
        Assert.False(device.Handle.IsClosed); // the buffer's reference keeps the native device
        Assert.Equal(before.Devices + 1, InfiniteLibrary.GetLiveObjects().Devices);
        Assert.Throws<ObjectDisposedException>(() => device.Allocate(16));
        buffer.Write<int>([1, 2, 3, 4, 5, 6, 7, 8]);
        Assert.Equal([1, 2, 3, 4, 5, 6, 7, 8], buffer.ToArray<int>());

        buffer.Dispose();
        Assert.True(device.Handle.IsClosed);
        Assert.Equal(before, InfiniteLibrary.GetLiveObjects());
    }

    [Fact]
    public void A_disposed_device_cannot_allocate()
    {
        var device = Device.Cpu();
        device.Dispose();
        Assert.Throws<ObjectDisposedException>(() => device.Allocate(16));
    }

    [Fact]
    public void Using_a_disposed_buffer_throws_instead_of_touching_freed_memory()
    {
        using var device = Device.Cpu();
        var buffer = device.Allocate(16);
        buffer.Dispose();
        Assert.Throws<ObjectDisposedException>(() => buffer.Write<byte>(new byte[4]));
    }

    [Fact]
    public void The_finalizer_releases_forgotten_handles_once_in_either_order()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        LiveObjects before = InfiniteLibrary.GetLiveObjects();
        long devicesReleased = DeviceHandle.ReleasedCount;
        long buffersReleased = BufferHandle.ReleasedCount;

        AllocateAndForget(buffers: 3);
        for (int i = 0; i < 3 && InfiniteLibrary.GetLiveObjects() != before; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }

        Assert.Equal(before, InfiniteLibrary.GetLiveObjects());
        Assert.Equal(devicesReleased + 1, DeviceHandle.ReleasedCount);
        Assert.Equal(buffersReleased + 3, BufferHandle.ReleasedCount);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void AllocateAndForget(int buffers)
    {
        var device = Device.Cpu();
        for (int i = 0; i < buffers; i++)
        {
            device.Allocate(1024).Fill((byte)i);
        }
    }
}
