using System.CommandLine;
using Infinite.Native;

namespace Infinite.Cli;

/// <summary><c>infinite devices</c>: the devices this machine offers, and why CUDA is missing when it is.</summary>
internal static class DevicesCommand
{
    public static Command Create()
    {
        var command = new Command("devices", "List the CPU and CUDA devices Infinite can use.");
        command.SetAction(_ => Run(Console.Out));
        return command;
    }

    internal static int Run(TextWriter output)
    {
        NativeLog.SetLevel(NativeLogLevel.Error); // the CUDA line below says it once, not twice
        output.WriteLine($"{"id",-8} {"name",-44} {"memory (free/total)",-22} {"units",5}  details");
        foreach (DeviceInfo d in Device.List())
        {
            string memory = $"{Gib(d.FreeMemory)}/{Gib(d.TotalMemory)} GiB";
            string details = d.Capability is { } cc ? $"sm_{cc.Major}{cc.Minor}" : d.Features.ToString();
            output.WriteLine($"{d.Id,-8} {Truncate(d.Name, 44),-44} {memory,-22} {d.ComputeUnits,5}  {details}");
        }
        if (Device.UnavailableReason(DeviceKind.Cuda) is { } reason)
        {
            output.WriteLine($"cuda: unavailable: {reason}");
        }
        return 0;
    }

    private static string Gib(ulong bytes) => (bytes / (1024.0 * 1024 * 1024)).ToString("0.0", System.Globalization.CultureInfo.InvariantCulture);

    private static string Truncate(string s, int n) => s.Length <= n ? s : s[..(n - 1)] + "…";
}
