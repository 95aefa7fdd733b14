using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;

namespace Infinite.Native;

/// <summary>
/// Routes the native library's log lines into an <see cref="ILogger"/>. The callback is a static
/// <c>UnmanagedCallersOnly</c> method, so there is no delegate for the GC to collect, and the logger
/// is held in a static field, so it stays rooted for as long as it is attached.
/// </summary>
public static class NativeLog
{
    private static readonly EventId NativeEvent = new(1, "native");
    private static ILogger? _logger;

    /// <summary>Sends native log lines to <paramref name="logger"/>; lines below the lowest level the
    /// logger has enabled are filtered in native code and never formatted.</summary>
    public static unsafe void Attach(ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(logger);
        Volatile.Write(ref _logger, logger);
        NativeStatus.Check(NativeMethods.inf_set_log_level(MinimumLevel(logger)));
        NativeStatus.Check(NativeMethods.inf_set_log_callback(&OnLine, null));
    }

    /// <summary>Sends native log lines back to stderr (warnings and errors only).</summary>
    public static unsafe void Detach()
    {
        NativeStatus.Check(NativeMethods.inf_set_log_callback(null, null));
        NativeStatus.Check(NativeMethods.inf_set_log_level(NativeLogLevel.Warning));
        Volatile.Write(ref _logger, null);
    }

    /// <summary>Sets the lowest native level that is formatted and delivered (default Warning).</summary>
    public static void SetLevel(NativeLogLevel level) => NativeStatus.Check(NativeMethods.inf_set_log_level(level));

    internal static NativeLogLevel MinimumLevel(ILogger logger)
    {
        for (var level = LogLevel.Trace; level <= LogLevel.Critical; level++)
        {
            if (logger.IsEnabled(level))
            {
                return level switch
                {
                    LogLevel.Trace => NativeLogLevel.Trace,
                    LogLevel.Debug => NativeLogLevel.Debug,
                    LogLevel.Information => NativeLogLevel.Info,
                    LogLevel.Warning => NativeLogLevel.Warning,
                    _ => NativeLogLevel.Error,
                };
            }
        }
        return NativeLogLevel.None;
    }

    internal static LogLevel ToLogLevel(NativeLogLevel level) => level switch
    {
        NativeLogLevel.Trace => LogLevel.Trace,
        NativeLogLevel.Debug => LogLevel.Debug,
        NativeLogLevel.Info => LogLevel.Information,
        NativeLogLevel.Warning => LogLevel.Warning,
        NativeLogLevel.Error => LogLevel.Error,
        _ => LogLevel.None,
    };

    // Runs on whatever native thread logged. An exception escaping here would kill the process,
    // so a misbehaving logger is contained.
    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static unsafe void OnLine(void* userData, NativeLogLevel level, byte* message)
    {
        try
        {
            ILogger? logger = Volatile.Read(ref _logger);
            if (logger is null)
            {
                return;
            }
            string text = Marshal.PtrToStringUTF8((nint)message) ?? string.Empty;
#pragma warning disable CA1848, CA2254 // the text is already formatted by native code
            logger.Log(ToLogLevel(level), NativeEvent, text);
#pragma warning restore CA1848, CA2254
        }
        catch (Exception)
        {
            // Logging must never take the process down.
        }
    }
}
