using System.Runtime.InteropServices;

namespace Infinite.Native;

/// <summary>Counts of live native objects, for leak checks (communicators and in-process groups included).</summary>
public readonly record struct LiveObjects(long Devices, long Buffers, ulong BufferBytes, long PagePools, long Models,
    long Comms = 0, long CommGroups = 0);

/// <summary>Facts about the loaded native library.</summary>
public static class InfiniteLibrary
{
    /// <summary>The ABI version these bindings were generated for.</summary>
    public static uint BindingsAbiVersion => (uint)NativeMethods.INF_ABI_VERSION;

    /// <summary>The ABI version of the loaded library (equal to <see cref="BindingsAbiVersion"/> once loaded).</summary>
    public static uint AbiVersion => NativeMethods.inf_abi_version();

    /// <summary>The library's version, e.g. 0.1.0.</summary>
    public static unsafe string Version => Marshal.PtrToStringUTF8((nint)NativeMethods.inf_version()) ?? string.Empty;

    /// <summary>How the library was built: compiler, CUDA plug-in, MPI, CPU kernels.</summary>
    public static unsafe string BuildInfo => Marshal.PtrToStringUTF8((nint)NativeMethods.inf_build_info()) ?? string.Empty;

    /// <summary>Live devices, buffers, pools, models and communicators across the process.</summary>
    public static unsafe LiveObjects GetLiveObjects()
    {
        var counts = new inf_live_objects { size = (uint)sizeof(inf_live_objects) };
        NativeStatus.Check(NativeMethods.inf_get_live_objects(&counts));
        return new LiveObjects(counts.devices, counts.buffers, counts.buffer_bytes, counts.page_pools, counts.models,
            counts.comms, counts.comm_groups);
    }

    /// <summary>The name of a status code, e.g. INF_STATUS_OUT_OF_RANGE.</summary>
    public static unsafe string StatusName(InfiniteStatus status) =>
        Marshal.PtrToStringUTF8((nint)NativeMethods.inf_status_name(status)) ?? string.Empty;
}
