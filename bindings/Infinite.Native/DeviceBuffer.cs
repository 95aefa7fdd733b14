using System.Runtime.InteropServices;

namespace Infinite.Native;

/// <summary>
/// A block of memory on a <see cref="Device"/>. Offsets and lengths are in bytes; typed overloads
/// copy spans of unmanaged values. Not safe for concurrent writes.
/// </summary>
public sealed class DeviceBuffer : IDisposable
{
    internal DeviceBuffer(Device device, BufferHandle handle, long length)
    {
        Device = device;
        Handle = handle;
        Length = length;
    }

    /// <summary>The device the memory lives on.</summary>
    public Device Device { get; }

    /// <summary>The native handle this buffer owns.</summary>
    public BufferHandle Handle { get; }

    /// <summary>Size in bytes.</summary>
    public long Length { get; }

    /// <summary>Copies <paramref name="source"/> into the buffer at <paramref name="byteOffset"/>.</summary>
    public unsafe void Write<T>(ReadOnlySpan<T> source, long byteOffset = 0) where T : unmanaged
    {
        ArgumentOutOfRangeException.ThrowIfNegative(byteOffset);
        ReadOnlySpan<byte> bytes = MemoryMarshal.AsBytes(source);
        using var buffer = new HandleLease(Handle);
        fixed (byte* p = bytes)
        {
            NativeStatus.Check(NativeMethods.inf_buffer_write((inf_buffer*)buffer.Value, (ulong)byteOffset, p, (ulong)bytes.Length));
        }
    }

    /// <summary>Copies bytes from the buffer at <paramref name="byteOffset"/> into <paramref name="destination"/>.</summary>
    public unsafe void Read<T>(Span<T> destination, long byteOffset = 0) where T : unmanaged
    {
        ArgumentOutOfRangeException.ThrowIfNegative(byteOffset);
        Span<byte> bytes = MemoryMarshal.AsBytes(destination);
        using var buffer = new HandleLease(Handle);
        fixed (byte* p = bytes)
        {
            NativeStatus.Check(NativeMethods.inf_buffer_read((inf_buffer*)buffer.Value, (ulong)byteOffset, p, (ulong)bytes.Length));
        }
    }

    /// <summary>The whole buffer as values of <typeparamref name="T"/>.</summary>
    public unsafe T[] ToArray<T>() where T : unmanaged
    {
        var result = new T[Length / sizeof(T)];
        Read<T>(result);
        return result;
    }

    /// <summary>Writes <paramref name="count"/> copies of <paramref name="value"/> (1, 2, 4 or 8 bytes)
    /// from <paramref name="byteOffset"/>; by default to the end of the buffer. Used to poison outputs.</summary>
    public unsafe void Fill<T>(T value, long byteOffset = 0, long? count = null) where T : unmanaged
    {
        ArgumentOutOfRangeException.ThrowIfNegative(byteOffset);
        long n = count ?? (Length - byteOffset) / sizeof(T);
        ArgumentOutOfRangeException.ThrowIfNegative(n, nameof(count));
        using var buffer = new HandleLease(Handle);
        NativeStatus.Check(NativeMethods.inf_buffer_fill((inf_buffer*)buffer.Value, (ulong)byteOffset, &value, (uint)sizeof(T), (ulong)n));
    }

    /// <summary>Copies <paramref name="bytes"/> bytes (default: all of <paramref name="source"/> from its offset)
    /// from another buffer, on this or another device.</summary>
    public unsafe void CopyFrom(DeviceBuffer source, long sourceOffset = 0, long destinationOffset = 0, long? bytes = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentOutOfRangeException.ThrowIfNegative(sourceOffset);
        ArgumentOutOfRangeException.ThrowIfNegative(destinationOffset);
        long n = bytes ?? source.Length - sourceOffset;
        ArgumentOutOfRangeException.ThrowIfNegative(n, nameof(bytes));
        using var dst = new HandleLease(Handle);
        using var src = new HandleLease(source.Handle);
        NativeStatus.Check(NativeMethods.inf_buffer_copy((inf_buffer*)dst.Value, (ulong)destinationOffset,
            (inf_buffer*)src.Value, (ulong)sourceOffset, (ulong)n));
    }

    public void Dispose() => Handle.Dispose();
}
