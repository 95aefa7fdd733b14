namespace Infinite.Engine;

/// <summary>Where the KV of streaming heads lives (<see cref="SparseOptions.StreamingStorage"/>).</summary>
public enum StreamingStorage
{
    /// <summary>In the request's pages, with every other head: memory grows with the context.</summary>
    Paged,

    /// <summary>In a fixed ring of pages per request (LServe): the sink pages, then the local window's pages reused in
    /// turn, so a streaming head's memory stays constant however long the context. One instance only.</summary>
    Ring,
}

/// <summary>The ring geometry of <see cref="StreamingStorage.Ring"/> (the native <c>inf_streaming_ring</c>).</summary>
public static class StreamingRing
{
    /// <summary>Pages of one request's ring: the sink's pages plus the pages any window of a step can touch, the
    /// widest being a prefill chunk of <paramref name="maxChunkTokens"/> (its first row looks back
    /// PrefillLocalTokens keys): <c>ceil(sink / P) + ceil((window - 1) / P) + 1</c>,
    /// window = max(DecodeLocalTokens, PrefillLocalTokens + maxChunkTokens - 1).</summary>
    public static int PagesPerSequence(SparseOptions sparse, int pageSize, int maxChunkTokens)
    {
        ArgumentNullException.ThrowIfNull(sparse);
        ArgumentOutOfRangeException.ThrowIfLessThan(pageSize, 1);
        long sink = Math.Max(sparse.DecodeSinkTokens, sparse.PrefillSinkTokens);
        long window = Math.Max(Math.Max(sparse.DecodeLocalTokens, 1), (long)sparse.PrefillLocalTokens + Math.Max(maxChunkTokens, 1) - 1);
        long pages = (sink + pageSize - 1) / pageSize + (window - 1 + pageSize - 1) / pageSize + 1;
        return (int)Math.Min(pages, int.MaxValue);
    }

    /// <summary>KV heads per layer of each role: the streaming heads (<paramref name="streaming"/> true) or the
    /// retrieval heads, from [layers * kvHeads] flags.</summary>
    public static int[] HeadsPerLayer(IReadOnlyList<bool> flags, int layers, int kvHeads, bool streaming)
    {
        ArgumentNullException.ThrowIfNull(flags);
        var counts = new int[layers];
        for (int l = 0; l < layers; l++)
        {
            for (int h = 0; h < kvHeads; h++)
            {
                counts[l] += flags[l * kvHeads + h] == streaming ? 1 : 0;
            }
        }
        return counts;
    }
}
