namespace Infinite.Native;

/// <summary>
/// A native call failed. <see cref="Status"/> is the C ABI status code and
/// <see cref="NativeMessage"/> the library's own message (it names the argument at fault).
/// </summary>
public class InfiniteException : Exception
{
    public InfiniteException(InfiniteStatus status, string function, string nativeMessage)
        : base(Compose(status, function, nativeMessage))
    {
        Status = status;
        Function = function;
        NativeMessage = nativeMessage;
    }

    /// <summary>The status the native function returned.</summary>
    public InfiniteStatus Status { get; }

    /// <summary>The C function that failed, e.g. <c>inf_buffer_write</c>.</summary>
    public string Function { get; }

    /// <summary>The message from <c>inf_last_error()</c>, verbatim.</summary>
    public string NativeMessage { get; }

    private static string Compose(InfiniteStatus status, string function, string message) =>
        string.IsNullOrEmpty(message) ? $"{function} failed with {status}." : $"{message} ({status})";
}
