using Infinite.Cli;

namespace Infinite.Native.Tests;

/// <summary>The `infinite info` and `infinite devices` commands, as a user runs them.</summary>
public sealed class CliTests
{
    [Fact]
    public void Info_names_the_loaded_library_its_abi_and_build()
    {
        var output = new StringWriter();
        Assert.Equal(0, InfoCommand.Run(output));
        string text = output.ToString();
        Assert.Contains($"library:  {NativeLibraryResolver.LoadedPath}", text, StringComparison.Ordinal);
        Assert.Contains($"abi:      {InfiniteLibrary.AbiVersion} (bindings {InfiniteLibrary.BindingsAbiVersion})", text, StringComparison.Ordinal);
        Assert.Contains("cuda:", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Devices_lists_the_cpu_and_says_why_cuda_is_missing()
    {
        var output = new StringWriter();
        Assert.Equal(0, DevicesCommand.Run(output));
        string[] lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("id", lines[0], StringComparison.Ordinal);
        Assert.Contains(lines, l => l.StartsWith("cpu:0", StringComparison.Ordinal) && l.Contains(Device.Describe(DeviceKind.Cpu).Name[..10], StringComparison.Ordinal));
        if (Device.UnavailableReason(DeviceKind.Cuda) is { } reason)
        {
            Assert.Contains($"cuda: unavailable: {reason}", output.ToString(), StringComparison.Ordinal);
        }
        else
        {
            Assert.Contains(lines, l => l.StartsWith("cuda:0", StringComparison.Ordinal));
        }
        NativeLog.SetLevel(NativeLogLevel.Warning);
    }
}
