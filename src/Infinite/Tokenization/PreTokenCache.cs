using System.Collections.Concurrent;

namespace Infinite.Tokenization;

/// <summary>
/// Pre-token -> ids memo shared by concurrent requests. Bounded by clearing when full: natural text repeats a
/// small set of words, so a simple reset keeps the hit rate high without LRU bookkeeping on the hot path.
/// </summary>
internal sealed class PreTokenCache(int capacity, int maxKeyLength)
{
    private readonly ConcurrentDictionary<string, int[]> entries = new(StringComparer.Ordinal);

    public int Count => entries.Count;

    public bool TryGet(string preToken, out int[] ids) => entries.TryGetValue(preToken, out ids!);

    public void Add(string preToken, int[] ids)
    {
        if (preToken.Length > maxKeyLength) return;
        if (entries.Count >= capacity) entries.Clear();
        entries.TryAdd(preToken, ids);
    }
}
