namespace Infinite.Native;

/// <summary>Owns one native <c>inf_model</c>; keeps its device alive (see <see cref="DeviceChildHandle"/>).</summary>
public sealed class ModelHandle : DeviceChildHandle
{
    private static long _released;

    internal ModelHandle()
    {
    }

    /// <summary>How many model handles this process has released.</summary>
    internal static long ReleasedCount => Interlocked.Read(ref _released);

    /// <summary>Calls <c>inf_model_create</c>; <paramref name="tensors"/>, <paramref name="progress"/> and
    /// <paramref name="userData"/> are passed through as they are.</summary>
    internal static unsafe ModelHandle Create(DeviceHandle device, inf_model_config config, nint tensors, int count,
        delegate* unmanaged[Cdecl]<void*, ulong, ulong, void> progress, nint userData)
    {
        var result = new ModelHandle();
        nint callback = (nint)progress;
        result.Create(device, parent =>
        {
            inf_model_config shape = config;
            inf_model* model;
            NativeStatus.Check(NativeMethods.inf_model_create((inf_device*)parent, &shape, (inf_tensor*)tensors, count,
                (delegate* unmanaged[Cdecl]<void*, ulong, ulong, void>)callback, (void*)userData, &model));
            return (nint)model;
        });
        return result;
    }

    private protected override unsafe bool Destroy(nint native)
    {
        Interlocked.Increment(ref _released);
        return NativeMethods.inf_model_destroy((inf_model*)native) == InfiniteStatus.Ok;
    }
}
