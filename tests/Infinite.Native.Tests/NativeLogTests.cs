using Microsoft.Extensions.Logging;

namespace Infinite.Native.Tests;

public sealed class NativeLogTests : IDisposable
{
    public void Dispose() => NativeLog.Detach();

    [Fact]
    public void Native_log_lines_reach_the_logger_with_their_level()
    {
        var logger = new ListLogger(LogLevel.Debug);
        NativeLog.Attach(logger);

        using (var device = Device.Cpu())
        {
            using var buffer = device.Allocate(128);
        }

        Assert.Contains(logger.Lines, l => l.Level == LogLevel.Debug && l.Message.Contains("cpu:0", StringComparison.Ordinal));
    }

    [Fact]
    public void Lines_below_the_loggers_level_are_not_delivered()
    {
        var logger = new ListLogger(LogLevel.Warning);
        NativeLog.Attach(logger);
        using (var device = Device.Cpu())
        {
            using var buffer = device.Allocate(128);
        }
        Assert.DoesNotContain(logger.Lines, l => l.Level < LogLevel.Warning);
        Assert.Equal(NativeLogLevel.Warning, NativeLog.MinimumLevel(logger));
    }

    [Fact]
    public void Lines_logged_on_another_thread_arrive()
    {
        var logger = new ListLogger(LogLevel.Trace);
        NativeLog.Attach(logger);
        var thread = new Thread(() =>
        {
            using var device = Device.Cpu();
        });
        thread.Start();
        thread.Join();
        Assert.NotEmpty(logger.Lines);
    }

    [Fact]
    public void A_throwing_logger_does_not_take_the_process_down()
    {
        NativeLog.Attach(new ThrowingLogger());
        using var device = Device.Cpu();
        using var buffer = device.Allocate(8);
        Assert.Equal(8, buffer.Length);
    }

    [Fact]
    public void The_callback_survives_garbage_collection()
    {
        var logger = new ListLogger(LogLevel.Debug);
        NativeLog.Attach(logger);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        using (var device = Device.Cpu())
        {
        }
        Assert.NotEmpty(logger.Lines);
    }

    private sealed record Line(LogLevel Level, string Message);

    private sealed class ListLogger(LogLevel minimum) : ILogger
    {
        private readonly object _gate = new();
        private readonly List<Line> _lines = [];

        public IReadOnlyList<Line> Lines
        {
            get
            {
                lock (_gate)
                {
                    return _lines.ToList();
                }
            }
        }

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= minimum;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (_gate)
            {
                _lines.Add(new Line(logLevel, formatter(state, exception)));
            }
        }
    }

    private sealed class ThrowingLogger : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            throw new InvalidOperationException("logger failure");
    }
}
