using Infinite.Engine;
using Infinite.Runtime;

namespace Infinite.Tests.Runtime;

/// <summary>The split of an engine step into per-instance plans, checked field by field against the header's rules
/// (no native code: these run everywhere).</summary>
public sealed class DistributedPlannerTests
{
    private const int PageSize = 16;
    private const int PerInstance = 10; // global id = instance * 10 + local

    [Fact]
    public void A_plan_without_homes_runs_on_instance_0_with_its_local_pages_and_positions()
    {
        var plan = new StepPlan
        {
            TokenIds = [5, 6, 7],
            Positions = [0, 1, 2],
            QStarts = [0, 3],
            KvLengths = [3],
            PageStarts = [0, 1],
            PageIds = [4],
            LogitTokens = [2],
        };
        DistributedStep step = DistributedPlanner.Split(plan, 2, PerInstance, PageSize, stepId: 7);
        InstancePlan home = step.Plans[0];
        Assert.Equal(7, home.StepId);
        Assert.Equal([5, 6, 7], home.TokenIds);
        Assert.Equal([4], home.PageIds);
        Assert.Equal([0], home.PagePositions);
        Assert.Equal([2], home.LogitTokens);
        Assert.Empty(home.RemoteSequences);
        Assert.True(step.Plans[1].IsIdle);
        Assert.Equal([0], step.Busy);
        Assert.Equal([(0, 0)], step.LogitSources);
    }

    [Fact]
    public void Remote_and_served_parts_follow_the_header_order_and_carry_kv_where_new_tokens_land()
    {
        // Sequence 0 (home 1): entries on 0, 1, 2; its decode token (position 40, entry 2) lands on instance 2.
        // Sequence 1 (home 0): entries on 2, 2; a two-token chunk at 17, 18 (entry 1, instance 2).
        // Sequence 2 (home 1): entries on 1, 0; decode at 20 (entry 1, instance 0).
        var plan = new StepPlan
        {
            TokenIds = [11, 21, 22, 31],
            Positions = [40, 17, 18, 20],
            QStarts = [0, 1, 3, 4],
            KvLengths = [41, 19, 21],
            PageStarts = [0, 3, 5, 7],
            PageIds = [3, 15, 27, 21, 22, 16, 8],
            LogitTokens = [3, 2, 0],
            Homes = [1, 0, 1],
        };
        DistributedStep step = DistributedPlanner.Split(plan, 3, PerInstance, PageSize, stepId: 1);

        InstancePlan p0 = step.Plans[0], p1 = step.Plans[1], p2 = step.Plans[2];
        // Instance 1 is home to sequences 0 and 2 (local 0 and 1).
        Assert.Equal([11, 31], p1.TokenIds);
        Assert.Equal([0, 1, 2], p1.QStarts);
        Assert.Equal([41, 21], p1.KvLengths);
        Assert.Equal([5, 6], p1.PageIds);
        Assert.Equal([16, 0], p1.PagePositions);
        Assert.Equal([0, 1, 2], p1.PageStarts);
        // Remote parts: by rank (0 then 2), then sequence.
        Assert.Equal([0, 1, 0], p1.RemoteSequences);
        Assert.Equal([0, 0, 2], p1.RemoteRanks);
        Assert.Equal([0, 1, 1], p1.RemoteSendsKv);
        // Instance 0 is home to sequence 1, all of whose pages are on 2.
        Assert.Equal([21, 22], p0.TokenIds);
        Assert.Empty(p0.PageIds);
        Assert.Equal([0, 0], p0.PageStarts);
        Assert.Equal([0], p0.RemoteSequences);
        Assert.Equal([2], p0.RemoteRanks);
        Assert.Equal([1], p0.RemoteSendsKv);
        // Instance 0 serves home 1's parts on rank 0: sequence 0 (page 3 at 0), sequence 2 (page 8 at 16, stores row 20).
        Assert.Equal([1, 1], p0.ServedRanks);
        Assert.Equal([0, 1, 2], p0.ServedQStarts);
        Assert.Equal([40, 20], p0.ServedPositions);
        Assert.Equal([41, 21], p0.ServedKvLengths);
        Assert.Equal([3, 8], p0.ServedPageIds);
        Assert.Equal([0, 16], p0.ServedPagePositions);
        Assert.Equal([0, 1], p0.ServedReceivesKv);
        Assert.Equal([-1, 8], p0.ServedAppendPages!);
        // Instance 2 serves home 0 first (sequence 1: pages 1, 2), then home 1 (sequence 0: page 7 at 32).
        Assert.Equal(0, p2.SequenceCount);
        Assert.Equal([0, 1], p2.ServedRanks);
        Assert.Equal([0, 2, 3], p2.ServedQStarts);
        Assert.Equal([17, 18, 40], p2.ServedPositions);
        Assert.Equal([1, 2, 7], p2.ServedPageIds);
        Assert.Equal([0, 16, 32], p2.ServedPagePositions);
        Assert.Equal([1, 1], p2.ServedReceivesKv);
        Assert.Equal([2, 2, 7], p2.ServedAppendPages!);
        // Logits: rows in the engine's order, each from its home.
        Assert.Equal([(1, 0), (0, 0), (1, 1)], step.LogitSources);
        Assert.Equal([1], p0.LogitTokens);
        Assert.Equal([1, 0], p1.LogitTokens);
    }

    [Fact]
    public void Pages_past_the_kv_length_are_not_exchanged()
    {
        var plan = new StepPlan
        {
            TokenIds = [1], Positions = [3], QStarts = [0, 1], KvLengths = [4],
            PageStarts = [0, 2], PageIds = [0, 11], LogitTokens = [0],
        };
        DistributedStep step = DistributedPlanner.Split(plan, 2, PerInstance, PageSize, 1);
        Assert.Empty(step.Plans[0].RemoteRanks);
        Assert.True(step.Plans[1].IsIdle);
    }

    [Theory]
    [InlineData(new[] { 0, 20 }, null, "PageIds[1] = 20")]
    [InlineData(new[] { 0, 1 }, new[] { 2 }, "Homes[0] = 2")]
    [InlineData(new[] { 0, 1 }, new[] { 0, 1 }, "Homes has 2 entries")]
    public void Bad_plans_name_what_is_wrong(int[] pages, int[]? homes, string expected)
    {
        var plan = new StepPlan
        {
            TokenIds = [1], Positions = [20], QStarts = [0, 1], KvLengths = [21],
            PageStarts = [0, 2], PageIds = pages, LogitTokens = [0], Homes = homes,
        };
        var error = Assert.Throws<ArgumentException>(() => DistributedPlanner.Split(plan, 2, PerInstance, PageSize, 1));
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_token_beyond_the_page_table_is_refused()
    {
        var plan = new StepPlan
        {
            TokenIds = [1], Positions = [16], QStarts = [0, 1], KvLengths = [17],
            PageStarts = [0, 1], PageIds = [0], LogitTokens = [0],
        };
        var error = Assert.Throws<ArgumentException>(() => DistributedPlanner.Split(plan, 2, PerInstance, PageSize, 1));
        Assert.Contains("beyond its page table", error.Message, StringComparison.Ordinal);
    }
}
