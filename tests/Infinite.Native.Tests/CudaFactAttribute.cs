using Infinite.Native;

namespace Infinite.Native.Tests;

/// <summary>A fact that runs where a CUDA device exists and is skipped, with the reason, where none does.</summary>
public sealed class CudaFactAttribute : FactAttribute
{
    private static readonly Lazy<string?> Reason = new(() =>
    {
        string? why = Device.UnavailableReason(DeviceKind.Cuda);
        if (why is not null)
        {
            return "no CUDA device: " + why;
        }
        return Device.Count(DeviceKind.Cuda) == 0 ? "no CUDA device: the CUDA backend loaded but found no GPU" : null;
    });

    public CudaFactAttribute()
    {
        if (Reason.Value is { } reason)
        {
            Skip = reason;
        }
    }
}
