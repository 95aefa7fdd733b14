using Infinite.Simulation;

namespace Infinite.Tests.Simulation;

public sealed class EventQueueTests
{
    [Fact]
    public void Events_come_out_in_time_order_and_ties_in_insertion_order()
    {
        var queue = new EventQueue();
        queue.Schedule(3.0, new SimEvent(SimEventKind.Arrival, 1));
        queue.Schedule(1.0, new SimEvent(SimEventKind.Arrival, 2));
        queue.Schedule(3.0, new SimEvent(SimEventKind.StepDone, 3));
        queue.Schedule(2.0, new SimEvent(SimEventKind.Arrival, 4));
        var order = new List<(double, int)>();
        while (queue.TryTake(out SimEvent e, out double t))
            order.Add((t, e.Target));
        Assert.Equal([(1.0, 2), (2.0, 4), (3.0, 1), (3.0, 3)], order);
        Assert.Equal(3.0, queue.Now);
    }

    [Fact]
    public void Scheduling_before_now_throws_instead_of_rewriting_history()
    {
        var queue = new EventQueue();
        queue.Schedule(5.0, new SimEvent(SimEventKind.Arrival, 0));
        Assert.True(queue.TryTake(out _, out _));
        var e = Assert.Throws<InvalidOperationException>(() => queue.Schedule(4.9, new SimEvent(SimEventKind.StepDone, 1)));
        Assert.Contains("before the current time", e.Message);
        Assert.Throws<InvalidOperationException>(() => queue.Schedule(double.NaN, new SimEvent(SimEventKind.StepDone, 1)));
        queue.Schedule(5.0, new SimEvent(SimEventKind.StepDone, 1)); // now itself is allowed
    }
}
