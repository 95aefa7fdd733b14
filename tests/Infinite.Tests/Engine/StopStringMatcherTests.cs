using Infinite.Engine;

namespace Infinite.Tests.Engine;

public sealed class StopStringMatcherTests
{
    [Fact]
    public void PossibleStopPrefix_IsHeld_ThenCut()
    {
        var matcher = new StopStringMatcher(["lo!"]);
        Assert.Equal("He", matcher.Append("Hel", out bool stopped));
        Assert.False(stopped);
        Assert.Equal("l", matcher.Append("lo", out stopped));
        Assert.False(stopped);
        Assert.Equal("", matcher.Append("!x", out stopped));
        Assert.True(stopped);
    }

    [Fact]
    public void EarliestOfSeveralStops_Wins()
    {
        var matcher = new StopStringMatcher(["cd", "b"]);
        Assert.Equal("a", matcher.Append("abcd", out bool stopped));
        Assert.True(stopped);
    }

    [Fact]
    public void NoStops_ReleasesEverything_AndFlushReleasesHeldText()
    {
        Assert.Equal("text", new StopStringMatcher(null).Append("text", out _));
        var matcher = new StopStringMatcher(["xyz"]);
        Assert.Equal("ab", matcher.Append("abxy", out bool stopped));
        Assert.False(stopped);
        Assert.Equal("xy", matcher.Flush());
    }

    [Fact]
    public void EmptyStop_IsRejected() =>
        Assert.Throws<ArgumentException>(() => new StopStringMatcher(["a", ""]));
}
