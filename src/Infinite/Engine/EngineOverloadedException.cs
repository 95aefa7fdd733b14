namespace Infinite.Engine;

/// <summary>The engine's wait queue is full; the caller should retry later (HTTP 429).</summary>
public sealed class EngineOverloadedException : Exception
{
    public EngineOverloadedException()
        : base("The engine's request queue is full.")
    {
    }

    public EngineOverloadedException(string message)
        : base(message)
    {
    }

    public EngineOverloadedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
