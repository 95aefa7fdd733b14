namespace Infinite.Simulation;

/// <summary>A trace file line that cannot be read; names the file, the 1-based line and column, and what was
/// expected, so a user can fix a real trace without guessing.</summary>
public sealed class TraceFormatException : FormatException
{
    public TraceFormatException(string source, int line, int column, string message)
        : base($"{source}:{line}:{column}: {message}")
    {
        Source = source;
        Line = line;
        Column = column;
    }

    public TraceFormatException() { }
    public TraceFormatException(string message) : base(message) { }
    public TraceFormatException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>1-based line of the error.</summary>
    public int Line { get; }
    /// <summary>1-based column (field number) of the error.</summary>
    public int Column { get; }
}
