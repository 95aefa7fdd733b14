
namespace Infinite.Native;

/// <summary>
/// A device the native core computes on: the CPU (always there) or a CUDA GPU (when the CUDA
/// plug-in loads and a GPU is present). Thread-safe. Buffers allocated on it keep it alive.
/// </summary>
public sealed class Device : IDisposable
{
    private volatile bool _disposed;

    private Device(DeviceHandle handle, DeviceKind kind, int ordinal)
    {
        Handle = handle;
        Kind = kind;
        Ordinal = ordinal;
    }

    /// <summary>The native handle this device owns.</summary>
    public DeviceHandle Handle { get; }

    public DeviceKind Kind { get; }

    public int Ordinal { get; }

    /// <summary>Opens device <paramref name="ordinal"/> of <paramref name="kind"/>.</summary>
    /// <exception cref="InfiniteException">No such device, or its backend is unavailable (the message says why).</exception>
    public static Device Open(DeviceKind kind, int ordinal = 0) => new(DeviceHandle.Open(kind, ordinal), kind, ordinal);

    /// <summary>Opens the CPU device.</summary>
    public static Device Cpu() => Open(DeviceKind.Cpu);

    /// <summary>Number of devices of <paramref name="kind"/>: 1 for the CPU, 0 when CUDA is unavailable.</summary>
    public static unsafe int Count(DeviceKind kind)
    {
        int count;
        NativeStatus.Check(NativeMethods.inf_device_count(kind, &count));
        return count;
    }

    /// <summary>Describes a device without opening it.</summary>
    public static unsafe DeviceInfo Describe(DeviceKind kind, int ordinal = 0)
    {
        inf_device_info info = DeviceInfo.Empty();
        NativeStatus.Check(NativeMethods.inf_device_get_info(kind, ordinal, &info));
        return DeviceInfo.From(info);
    }

    /// <summary>Every device of every kind this machine offers.</summary>
    public static IReadOnlyList<DeviceInfo> List()
    {
        var all = new List<DeviceInfo>();
        foreach (DeviceKind kind in Enum.GetValues<DeviceKind>())
        {
            for (int i = 0, n = Count(kind); i < n; i++)
            {
                all.Add(Describe(kind, i));
            }
        }
        return all;
    }

    /// <summary>Null when the backend for <paramref name="kind"/> is usable; otherwise why not
    /// (e.g. the CUDA plug-in was not built, the driver is missing, no GPU is present).</summary>
    public static string? UnavailableReason(DeviceKind kind)
    {
        InfiniteStatus status = NativeMethods.inf_backend_load(kind);
        return status == InfiniteStatus.Ok ? null : NativeStatus.LastError();
    }

    /// <summary>This device's description, with free memory as of now.</summary>
    public unsafe DeviceInfo Info
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            using var device = new HandleLease(Handle);
            inf_device_info info = DeviceInfo.Empty();
            NativeStatus.Check(NativeMethods.inf_device_query((inf_device*)device.Value, &info));
            return DeviceInfo.From(info);
        }
    }

    /// <summary>Allocates <paramref name="bytes"/> bytes of device memory (contents undefined).</summary>
    public DeviceBuffer Allocate(long bytes)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytes);
        return new DeviceBuffer(this, BufferHandle.Allocate(Handle, (ulong)bytes), bytes);
    }

    /// <summary>Allocates room for <paramref name="count"/> values of <typeparamref name="T"/>.</summary>
    public unsafe DeviceBuffer Allocate<T>(long count) where T : unmanaged
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        return Allocate(checked(count * sizeof(T)));
    }

    /// <summary>Waits until all work queued on this device is done.</summary>
    public unsafe void Synchronize()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        using var device = new HandleLease(Handle);
        NativeStatus.Check(NativeMethods.inf_device_synchronize((inf_device*)device.Value));
    }

    /// <summary>Releases this object's hold on the device. Buffers still alive keep the native device
    /// until they are disposed too; this object refuses further use at once.</summary>
    public void Dispose()
    {
        _disposed = true;
        Handle.Dispose();
    }

    public override string ToString() => $"{Kind.ToString().ToLowerInvariant()}:{Ordinal}";
}
