namespace Infinite.Simulation;

/// <summary>
/// One hop between two devices: bandwidth in bytes per second in one direction and the latency of one message. A
/// message of <c>n</c> bytes takes <c>Latency + n / Bandwidth</c>; the per-layer query/partial exchange is many small
/// messages, so latency matters as much as bandwidth there.
/// </summary>
public readonly record struct Link(double Bandwidth, double LatencySeconds)
{
    /// <summary>Seconds to send one message of <paramref name="bytes"/> bytes.</summary>
    public double Seconds(double bytes) => bytes <= 0 ? 0 : LatencySeconds + bytes / Bandwidth;

    /// <summary>Throws when the figures cannot describe a link.</summary>
    public void Validate(string name)
    {
        if (!(Bandwidth > 0) || double.IsInfinity(Bandwidth))
            throw new ArgumentException($"{name}: bandwidth must be a positive number of bytes per second, got {Bandwidth}.");
        if (!(LatencySeconds >= 0) || double.IsInfinity(LatencySeconds))
            throw new ArgumentException($"{name}: latency must be zero or a positive number of seconds, got {LatencySeconds}.");
    }
}
