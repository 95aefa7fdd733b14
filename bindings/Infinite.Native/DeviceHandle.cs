using System.Runtime.InteropServices;

namespace Infinite.Native;

/// <summary>Owns one native <c>inf_device</c>. Released once, by Dispose or by the finalizer.</summary>
public sealed class DeviceHandle : SafeHandle
{
    private static long _released;

    internal DeviceHandle() : base(0, ownsHandle: true)
    {
    }

    public override bool IsInvalid => handle == 0;

    /// <summary>How many device handles this process has released (for leak and double-free tests).</summary>
    internal static long ReleasedCount => Interlocked.Read(ref _released);

    internal static unsafe DeviceHandle Open(DeviceKind kind, int ordinal)
    {
        var result = new DeviceHandle();
        inf_device* device;
        NativeStatus.Check(NativeMethods.inf_device_create(kind, ordinal, &device));
        result.SetHandle((nint)device);
        return result;
    }

    protected override unsafe bool ReleaseHandle()
    {
        Interlocked.Increment(ref _released);
        return NativeMethods.inf_device_destroy((inf_device*)handle) == InfiniteStatus.Ok;
    }
}
