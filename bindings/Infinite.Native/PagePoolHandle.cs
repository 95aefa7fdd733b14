namespace Infinite.Native;

/// <summary>Owns one native <c>inf_page_pool</c>; keeps its device alive (see <see cref="DeviceChildHandle"/>).</summary>
public sealed class PagePoolHandle : DeviceChildHandle
{
    private static long _released;

    internal PagePoolHandle()
    {
    }

    /// <summary>How many page pool handles this process has released.</summary>
    internal static long ReleasedCount => Interlocked.Read(ref _released);

    internal static unsafe PagePoolHandle Create(DeviceHandle device, inf_page_pool_config config)
    {
        var result = new PagePoolHandle();
        result.Create(device, parent =>
        {
            inf_page_pool_config shape = config;
            inf_page_pool* pool;
            NativeStatus.Check(NativeMethods.inf_page_pool_create((inf_device*)parent, &shape, &pool));
            return (nint)pool;
        });
        return result;
    }

    private protected override unsafe bool Destroy(nint native)
    {
        Interlocked.Increment(ref _released);
        return NativeMethods.inf_page_pool_destroy((inf_page_pool*)native) == InfiniteStatus.Ok;
    }
}
