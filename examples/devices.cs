#:project ../bindings/Infinite.Native/Infinite.Native.csproj
#:property PublishAot=false
// A .NET 10 file-based app: `dotnet run examples/devices.cs` (after ./build.sh build).
// Lists the devices Infinite can use and round-trips a buffer through the first GPU, or the CPU.
using Infinite.Native;

foreach (DeviceInfo d in Device.List())
{
    Console.WriteLine($"{d.Id,-7} {d.Name} ({d.TotalMemory >> 20} MiB, {d.ComputeUnits} units)");
}
Console.WriteLine(Device.UnavailableReason(DeviceKind.Cuda) is { } why ? $"CUDA: {why}" : "CUDA: ready");

using Device device = Device.Count(DeviceKind.Cuda) > 0 ? Device.Open(DeviceKind.Cuda) : Device.Cpu();
using DeviceBuffer buffer = device.Allocate<float>(4);
buffer.Fill(float.NaN);
buffer.Write<float>([1f, 2f, 3f, 4f]);
Console.WriteLine($"{device}: {string.Join(", ", buffer.ToArray<float>())}");
