namespace Infinite.Tokenization;

/// <summary>
/// The BPE loop shared by both algorithms: repeatedly merge the adjacent pair with the best (lowest) priority,
/// leftmost on ties. A priority queue with per-symbol versions keeps it O(n log n) on long inputs (a pasted
/// base64 blob is one pre-token) instead of rescanning all pairs after every merge.
/// </summary>
internal static class PairMerger
{
    /// <summary>Priority of merging <paramref name="left"/> and <paramref name="right"/>; null when they never merge.</summary>
    public delegate double? Priority(string left, string right);

    public static List<string> Merge(List<string> symbols, Priority priority)
    {
        int n = symbols.Count;
        if (n < 2) return symbols;
        var text = symbols.ToArray();
        var prev = new int[n];
        var next = new int[n];
        var version = new int[n];
        for (int i = 0; i < n; i++) { prev[i] = i - 1; next[i] = i + 1; }

        var queue = new PriorityQueue<(int Left, int Right, int LeftVersion, int RightVersion), (double, int)>();
        void Offer(int left, int right)
        {
            if (left < 0 || right >= n) return;
            var p = priority(text[left], text[right]);
            if (p is double value) queue.Enqueue((left, right, version[left], version[right]), (value, left));
        }

        for (int i = 0; i + 1 < n; i++) Offer(i, i + 1);
        while (queue.TryDequeue(out var pair, out _))
        {
            // Stale entries: either side changed or was absorbed since the pair was offered.
            if (version[pair.Left] != pair.LeftVersion || version[pair.Right] != pair.RightVersion
                || next[pair.Left] != pair.Right || text[pair.Right] is null) continue;
            text[pair.Left] += text[pair.Right];
            text[pair.Right] = null!;
            version[pair.Left]++;
            version[pair.Right]++;
            next[pair.Left] = next[pair.Right];
            if (next[pair.Right] < n) prev[next[pair.Right]] = pair.Left;
            Offer(prev[pair.Left], pair.Left);
            Offer(pair.Left, next[pair.Left]);
        }

        var result = new List<string>();
        for (int i = 0; i < n; i = next[i]) result.Add(text[i]);
        return result;
    }
}
