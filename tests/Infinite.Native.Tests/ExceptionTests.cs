
namespace Infinite.Native.Tests;

public sealed class ExceptionTests
{
    [Fact]
    public void Opening_a_missing_device_throws_with_the_native_message()
    {
        var e = Assert.Throws<InfiniteException>(() => Device.Open(DeviceKind.Cpu, 5));
        Assert.Equal(InfiniteStatus.OutOfRange, e.Status);
        Assert.Equal("inf_device_create", e.Function);
        Assert.Contains("ordinal", e.NativeMessage, StringComparison.Ordinal);
        Assert.Contains(e.NativeMessage, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unknown_device_kind_names_the_argument()
    {
        var e = Assert.Throws<InfiniteException>(() => Device.Count((DeviceKind)7));
        Assert.Equal(InfiniteStatus.InvalidArgument, e.Status);
        Assert.Contains("kind", e.NativeMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void Writing_past_the_end_names_the_offset_and_the_size()
    {
        using var device = Device.Cpu();
        using var buffer = device.Allocate(256);
        var e = Assert.Throws<InfiniteException>(() => buffer.Write<byte>(new byte[200], byteOffset: 100));
        Assert.Equal(InfiniteStatus.OutOfRange, e.Status);
        Assert.Contains("dst_offset", e.NativeMessage, StringComparison.Ordinal);
        Assert.Contains("256", e.NativeMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void A_fill_pattern_of_three_bytes_is_refused()
    {
        using var device = Device.Cpu();
        using var buffer = device.Allocate(64);
        var e = Assert.Throws<InfiniteException>(() => buffer.Fill(new ThreeBytes(), 0, 4));
        Assert.Equal(InfiniteStatus.InvalidArgument, e.Status);
        Assert.Contains("pattern_bytes", e.NativeMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void An_impossible_allocation_is_out_of_memory_not_a_crash()
    {
        using var device = Device.Cpu();
        var e = Assert.Throws<InfiniteException>(() => device.Allocate(long.MaxValue));
        Assert.Equal(InfiniteStatus.OutOfMemory, e.Status);
        Assert.Contains("bytes", e.NativeMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void The_message_belongs_to_the_thread_that_failed()
    {
        using var device = Device.Cpu();
        using var buffer = device.Allocate(16);
        Assert.Throws<InfiniteException>(() => buffer.Write<byte>(new byte[32]));
        string otherThread = "";
        var thread = new Thread(() => otherThread = NativeStatus.LastError());
        thread.Start();
        thread.Join();
        Assert.Equal("", otherThread);
        Assert.NotEqual("", NativeStatus.LastError());
    }

    [Fact]
    public void Every_status_has_a_name()
    {
        foreach (InfiniteStatus status in Enum.GetValues<InfiniteStatus>())
        {
            string expected = "INF_STATUS_" + string.Concat(status.ToString().Select((c, i) =>
                i > 0 && char.IsUpper(c) ? "_" + c : char.ToUpperInvariant(c).ToString()));
            Assert.Equal(expected, InfiniteLibrary.StatusName(status));
        }
    }

    private struct ThreeBytes
    {
#pragma warning disable CS0169 // only the size matters
        private byte _a, _b, _c;
#pragma warning restore CS0169
    }
}
