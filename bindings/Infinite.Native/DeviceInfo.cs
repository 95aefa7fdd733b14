
namespace Infinite.Native;

/// <summary>What a device is: name, memory, compute units and (CUDA) capability or (CPU) features.</summary>
public sealed record DeviceInfo(
    DeviceKind Kind,
    int Ordinal,
    string Name,
    int ComputeUnits,
    ulong TotalMemory,
    ulong FreeMemory,
    Version? Capability,
    CpuFeatures Features)
{
    /// <summary>Short identifier, e.g. <c>cpu:0</c> or <c>cuda:1</c>.</summary>
    public string Id => $"{Kind.ToString().ToLowerInvariant()}:{Ordinal}";

    internal static unsafe DeviceInfo From(in inf_device_info info)
    {
        string name;
        fixed (byte* p = info.name)
        {
            name = System.Runtime.InteropServices.Marshal.PtrToStringUTF8((nint)p) ?? string.Empty;
        }
        Version? capability = info.kind == DeviceKind.Cuda
            ? new Version(info.capability_major, info.capability_minor)
            : null;
        return new DeviceInfo(info.kind, info.ordinal, name, info.compute_units, info.total_memory,
            info.free_memory, capability, (CpuFeatures)info.features);
    }

    internal static unsafe inf_device_info Empty() => new() { size = (uint)sizeof(inf_device_info) };
}
