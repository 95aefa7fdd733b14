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

    [Theory]
    [InlineData(0, 4, 0)]
    [InlineData(1, 4, 1)]
    [InlineData(4, 4, 1)]
    [InlineData(5, 4, 2)]
    public void PagesFor_RoundsUp(int tokens, int pageSize, int pages) =>
        Assert.Equal(pages, PageAllocator.PagesFor(tokens, pageSize));
}
