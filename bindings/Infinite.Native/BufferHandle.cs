using System.Runtime.InteropServices;

namespace Infinite.Native;

/// <summary>
/// Owns one native <c>inf_buffer</c> and keeps its parent <see cref="DeviceHandle"/> alive
/// (<c>DangerousAddRef</c>) until the buffer is freed, so device memory is never freed without
/// its device, even when the finalizer thread releases the two in either order.
/// </summary>
public sealed class BufferHandle : SafeHandle
{
    private static long _released;
    private DeviceHandle? _parent;

    internal BufferHandle() : base(0, ownsHandle: true)
    {
    }

    public override bool IsInvalid => handle == 0;

    /// <summary>How many buffer handles this process has released (for leak and double-free tests).</summary>
    internal static long ReleasedCount => Interlocked.Read(ref _released);

    internal static unsafe BufferHandle Allocate(DeviceHandle device, ulong bytes)
    {
        var result = new BufferHandle();
        bool added = false;
        try
        {
            device.DangerousAddRef(ref added);
            inf_buffer* buffer;
            NativeStatus.Check(NativeMethods.inf_buffer_create((inf_device*)device.DangerousGetHandle(), bytes, &buffer));
            result._parent = device;
            result.SetHandle((nint)buffer);
            added = false; // the reference now belongs to the buffer, released in ReleaseHandle
        }
        finally
        {
            if (added)
            {
                device.DangerousRelease();
            }
        }
        return result;
    }

    protected override unsafe bool ReleaseHandle()
    {
        Interlocked.Increment(ref _released);
        bool ok = NativeMethods.inf_buffer_destroy((inf_buffer*)handle) == InfiniteStatus.Ok;
        _parent?.DangerousRelease();
        _parent = null;
        return ok;
    }
}
