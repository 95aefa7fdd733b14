namespace Infinite.Tests.Runtime;

/// <summary>A sequence as an engine would track it in tests: its page table and how many tokens it holds.</summary>
internal sealed class TestSequence(ShuffledPages pages)
{
    public List<int> Pages { get; } = [];

    public int Length { get; set; }

    /// <summary>Grows the page table to hold <paramref name="length"/> tokens.</summary>
    public void Reserve(int length)
    {
        while (Pages.Count * pages.PageSize < length)
        {
            Pages.Add(pages.Take());
        }
    }
}
