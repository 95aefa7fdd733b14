namespace Infinite.Simulation;

/// <summary>
/// The discrete-event clock: events ordered by time (seconds, double), ties broken by insertion order so a run is
/// deterministic. Time never goes backwards: scheduling an event before <see cref="Now"/> is a bug in the caller and
/// throws instead of silently reordering history.
/// </summary>
internal sealed class EventQueue
{
    private readonly PriorityQueue<SimEvent, (double Time, long Order)> _queue = new();
    private long _order;

    /// <summary>Time of the event last taken (0 before any).</summary>
    public double Now { get; private set; }
    public int Count => _queue.Count;
    /// <summary>Events taken so far.</summary>
    public long Processed { get; private set; }

    public void Schedule(double time, SimEvent e)
    {
        if (double.IsNaN(time) || time < Now)
            throw new InvalidOperationException($"Event {e} scheduled at {time} s, before the current time {Now} s.");
        _queue.Enqueue(e, (time, _order++));
    }

    public bool TryTake(out SimEvent e, out double time)
    {
        if (!_queue.TryDequeue(out e, out var key))
        {
            time = Now;
            return false;
        }
        if (key.Time < Now)
            throw new InvalidOperationException($"Time went backwards: {key.Time} s after {Now} s.");
        Now = key.Time;
        time = key.Time;
        Processed++;
        return true;
    }
}
