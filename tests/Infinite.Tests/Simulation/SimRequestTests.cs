using Infinite.Simulation;

namespace Infinite.Tests.Simulation;

/// <summary>Where a prefill chunk's keys lie: only the pages up to its last position (causal attention).</summary>
public sealed class SimRequestTests
{
    [Fact]
    public void The_prefix_counts_only_the_pages_a_chunk_reads_and_restarts_when_it_shrinks()
    {
        var r = new SimRequest(0, new WorkloadRequest(0, 300, 1), instances: 3);
        r.Table.AddRange([0, 1, 5, 6, 9]); // 4 pages per instance: instances 0, 0, 1, 1, 2
        static int InstanceOf(int page) => page / 4;

        Assert.Equal([2, 0, 0], r.AdvancePrefix(2, InstanceOf)); // the first chunks read the home's pages alone
        Assert.Equal([2, 1, 0], r.AdvancePrefix(3, InstanceOf));
        Assert.Equal([2, 2, 1], r.AdvancePrefix(5, InstanceOf));
        Assert.Equal([1, 0, 0], r.AdvancePrefix(1, InstanceOf)); // a recompute starts over
        r.ResetPrefix();
        Assert.Equal(0, r.PrefixPages);
        Assert.Equal([2, 1, 0], r.AdvancePrefix(3, InstanceOf));
    }
}
