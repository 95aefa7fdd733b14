namespace Infinite.Native;

/// <summary>Owns one native <c>inf_buffer</c>; keeps its device alive (see <see cref="DeviceChildHandle"/>).</summary>
public sealed class BufferHandle : DeviceChildHandle
{
    private static long _released;

    internal BufferHandle()
    {
    }

    /// <summary>How many buffer handles this process has released (for leak and double-free tests).</summary>
    internal static long ReleasedCount => Interlocked.Read(ref _released);

    internal static unsafe BufferHandle Allocate(DeviceHandle device, ulong bytes)
    {
        var result = new BufferHandle();
        result.Create(device, parent =>
        {
            inf_buffer* buffer;
            NativeStatus.Check(NativeMethods.inf_buffer_create((inf_device*)parent, bytes, &buffer));
            return (nint)buffer;
        });
        return result;
    }

    private protected override unsafe bool Destroy(nint native)
    {
        Interlocked.Increment(ref _released);
        return NativeMethods.inf_buffer_destroy((inf_buffer*)native) == InfiniteStatus.Ok;
    }
}
