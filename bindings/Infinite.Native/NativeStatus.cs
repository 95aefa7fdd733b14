using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Infinite.Native;

/// <summary>Turns a native status into an <see cref="InfiniteException"/> carrying the native message
/// (<see cref="CommunicationTimeoutException"/> and <see cref="PeerFailedException"/> for the communicator's two).</summary>
internal static class NativeStatus
{
    /// <summary>Throws when <paramref name="status"/> is not OK. The message is read at once, on this thread,
    /// because <c>inf_last_error()</c> is thread-local and overwritten by the next failing call.</summary>
    public static void Check(InfiniteStatus status, [CallerArgumentExpression(nameof(status))] string call = "")
    {
        if (status != InfiniteStatus.Ok)
        {
            throw Exception(status, FunctionName(call));
        }
    }

    /// <summary>The exception for a failed status: communication failures get their own types, which callers that
    /// drive several instances catch to tell a dead or silent peer from a bad argument.</summary>
    public static InfiniteException Exception(InfiniteStatus status, string function)
    {
        string message = LastError();
        return status switch
        {
            InfiniteStatus.Timeout => new CommunicationTimeoutException(function, message),
            InfiniteStatus.PeerFailed => new PeerFailedException(function, message),
            _ => new InfiniteException(status, function, message),
        };
    }

    public static unsafe string LastError() =>
        Marshal.PtrToStringUTF8((nint)NativeMethods.inf_last_error()) ?? string.Empty;

    // "NativeMethods.inf_buffer_write(h, 0, p, n)" -> "inf_buffer_write"
    private static string FunctionName(string call)
    {
        int open = call.IndexOf('(');
        string head = open < 0 ? call : call[..open];
        int dot = head.LastIndexOf('.');
        return dot < 0 ? head.Trim() : head[(dot + 1)..].Trim();
    }
}
