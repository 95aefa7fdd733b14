using Infinite.Cluster;
using Infinite.Engine;

namespace Infinite.Tests.Engine;

public sealed class PageAllocatorTests
{
    [Fact]
    public void Grow_TakesDistinctPages_AndReleaseReturnsThem()
    {
        var allocator = new PageAllocator(6);
        var a = new List<int>();
        var b = new List<int>();
        Assert.True(allocator.TryGrow(a, 2));
        Assert.True(allocator.TryGrow(b, 3));
        Assert.True(allocator.TryGrow(a, 2)); // already that large: nothing taken
        Assert.Equal(1, allocator.FreePages);
        Assert.Empty(a.Intersect(b));

        Assert.False(allocator.TryGrow(a, 4)); // needs 2, one free: nothing taken
        Assert.Equal(2, a.Count);
        Assert.Equal(1, allocator.FreePages);

        allocator.Release(a);
        allocator.Release(b);
        Assert.Empty(a);
        Assert.Equal(6, allocator.FreePages);
        Assert.Equal(0, allocator.UsedPages);
    }

    [Fact]
    public void ReleasingAPageTwice_Throws()
    {
        var allocator = new PageAllocator(2);
        var table = new List<int>();
        Assert.True(allocator.TryGrow(table, 1));
        var copy = new List<int>(table);
        allocator.Release(table);
        Assert.Throws<InvalidOperationException>(() => allocator.Release(copy));
    }

    [Fact]
    public void AsAPageSpace_IsOneInstance_WithEveryRequestHomedOnZero()
    {
        IKvPageSpace space = new PageAllocator(4);
        Assert.Equal((1, 4, 4, 4), (space.Instances, space.PagesPerInstance, space.TotalPages, space.MaxPagesPerRequest));
        Assert.Equal(0, space.PlaceRequest(1, 4));
        Assert.Equal(-1, space.PlaceRequest(2, 5)); // could never fit
        var table = new List<int>();
        Assert.True(space.TryGrow(1, 0, table, 3));
        Assert.Equal([0, 1, 2], table);
        Assert.Equal(1, space.AvailableTo(1, 0));
        Assert.Equal(0, space.InstanceOf(table[2]));
        Assert.Throws<ArgumentOutOfRangeException>(() => space.TryGrow(1, 1, table, 4));
        space.Release(1, table);
        Assert.Empty(table);
        Assert.Equal(4, space.FreePages);
    }

    [Theory]
    [InlineData(0, 4, 0)]
    [InlineData(1, 4, 1)]
    [InlineData(4, 4, 1)]
    [InlineData(5, 4, 2)]
    public void PagesFor_RoundsUp(int tokens, int pageSize, int pages) =>
        Assert.Equal(pages, PageAllocator.PagesFor(tokens, pageSize));
}
