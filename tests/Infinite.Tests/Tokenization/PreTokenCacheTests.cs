using Infinite.Tokenization;

namespace Infinite.Tests.Tokenization;

public class PreTokenCacheTests
{
    [Fact]
    public void Cache_stays_within_capacity_and_skips_long_keys()
    {
        var cache = new PreTokenCache(capacity: 4, maxKeyLength: 5);
        for (int i = 0; i < 10; i++) cache.Add("k" + i, [i]);
        Assert.InRange(cache.Count, 1, 4);
        Assert.True(cache.TryGet("k9", out var ids));
        Assert.Equal([9], ids);
        cache.Add("toolong", [1]);
        Assert.False(cache.TryGet("toolong", out _));
    }
}
