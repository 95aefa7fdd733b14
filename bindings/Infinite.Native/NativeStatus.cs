using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Infinite.Native;

/// <summary>Turns a native status into an <see cref="InfiniteException"/> carrying the native message.</summary>
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

    public static InfiniteException Exception(InfiniteStatus status, string function) =>
        new(status, function, LastError());

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
