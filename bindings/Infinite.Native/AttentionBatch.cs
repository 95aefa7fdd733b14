namespace Infinite.Native;

/// <summary>
/// The sequences of one MicroAttention call, as the scheduler describes them: for each sequence its
/// query positions (decode: one; a prefill chunk: several), its KV length and its page table; and,
/// optionally, for a (sequence, KV head) the subset of the table that head reads (sparse heads,
/// the remote part of a distributed request). Built once per step; the arrays go down as they are.
/// </summary>
public sealed class AttentionBatch
{
    private readonly List<int> _qStarts = [0];
    private readonly List<int> _qPositions = [];
    private readonly List<int> _kvLengths = [];
    private readonly List<int> _pageStarts = [0];
    private readonly List<int> _pageIds = [];
    private readonly List<int> _pagePositions = [];
    private readonly Dictionary<(int Sequence, int Head), int[]> _headPages = [];
    private bool _explicitPositions;
    private bool? _perQueryHead;

    /// <param name="queryHeads">Query heads of the model (a multiple of the pool's KV heads).</param>
    /// <param name="scale">Softmax scale; 0 means 1/sqrt(head_dim).</param>
    public AttentionBatch(int queryHeads, float scale = 0f)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(queryHeads);
        QueryHeads = queryHeads;
        Scale = scale;
    }

    public int QueryHeads { get; }

    public float Scale { get; }

    /// <summary>Element type of the q buffer: F32, or the pool's type.</summary>
    public DataType QueryType { get; init; } = DataType.F32;

    public int Sequences => _kvLengths.Count;

    /// <summary>Query rows over all sequences.</summary>
    public int QueryRows => _qPositions.Count;

    /// <summary>Adds a sequence. Its page j holds the keys at positions
    /// <paramref name="pagePositions"/>[j] + slot (default: j * page size).</summary>
    /// <returns>The sequence's index in the batch.</returns>
    public int AddSequence(ReadOnlySpan<int> queryPositions, int kvLength, ReadOnlySpan<int> pages, ReadOnlySpan<int> pagePositions = default)
    {
        if (!pagePositions.IsEmpty && pagePositions.Length != pages.Length)
        {
            throw new ArgumentException($"pagePositions has {pagePositions.Length} entries but pages has {pages.Length}", nameof(pagePositions));
        }
        if (!pagePositions.IsEmpty && !_explicitPositions)
        {
            _explicitPositions = true;
            _pagePositions.Clear();
            for (int s = 0; s < Sequences; s++)
            {
                for (int j = _pageStarts[s]; j < _pageStarts[s + 1]; j++)
                {
                    _pagePositions.Add(-1); // resolved against the pool's page size in Materialize
                }
            }
        }
        _qPositions.AddRange(queryPositions);
        _qStarts.Add(_qPositions.Count);
        _kvLengths.Add(kvLength);
        _pageIds.AddRange(pages);
        _pageStarts.Add(_pageIds.Count);
        if (_explicitPositions)
        {
            if (pagePositions.IsEmpty)
            {
                for (int j = 0; j < pages.Length; j++)
                {
                    _pagePositions.Add(-1);
                }
            }
            else
            {
                _pagePositions.AddRange(pagePositions);
            }
        }
        return Sequences - 1;
    }

    /// <summary>Restricts KV head <paramref name="kvHead"/> of <paramref name="sequence"/> to the entries
    /// <paramref name="entries"/> of its page table (indices into the pages given to AddSequence).
    /// Heads never restricted read the whole table.</summary>
    public void SetHeadPages(int sequence, int kvHead, ReadOnlySpan<int> entries) => SetLists(sequence, kvHead, entries, perQueryHead: false);

    /// <summary>Restricts query head <paramref name="queryHead"/> of <paramref name="sequence"/> to
    /// <paramref name="entries"/> (per-query-head page selection). A batch uses per-KV-head or
    /// per-query-head lists, not both.</summary>
    public void SetQueryHeadPages(int sequence, int queryHead, ReadOnlySpan<int> entries)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(queryHead, QueryHeads);
        SetLists(sequence, queryHead, entries, perQueryHead: true);
    }

    /// <summary>Applies a selection to <paramref name="sequence"/>: its lists for that sequence, per KV head
    /// or per query head as the selection was made.</summary>
    public void SetSelectedPages(int sequence, PageSelection selection, int selectionSequence)
    {
        ArgumentNullException.ThrowIfNull(selection);
        for (int h = 0; h < selection.ListsPerSequence; h++)
        {
            SetLists(sequence, h, selection.Entries(selectionSequence, h), selection.PerQueryHead);
        }
    }

    /// <summary>Streaming KV heads for the next runs (the layer's flags, see <see cref="HeadRoles.StreamingFlags"/>):
    /// such a head sees, for a query at p, only keys before <paramref name="sinkTokens"/> or after p - <paramref name="localTokens"/>.
    /// Null flags: every head dense.</summary>
    public void SetStreamingHeads(int[]? flags, int sinkTokens, int localTokens)
    {
        StreamingHeads = flags;
        SinkTokens = sinkTokens;
        LocalTokens = localTokens;
    }

    public int[]? StreamingHeads { get; private set; }

    public int SinkTokens { get; private set; }

    public int LocalTokens { get; private set; }

    internal bool PerQueryHeadLists => _perQueryHead == true;

    private void SetLists(int sequence, int head, ReadOnlySpan<int> entries, bool perQueryHead)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(sequence);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(sequence, Sequences);
        ArgumentOutOfRangeException.ThrowIfNegative(head);
        if (_perQueryHead is { } mode && mode != perQueryHead)
        {
            throw new InvalidOperationException("this batch already has per-" + (mode ? "query" : "KV") + "-head page lists; a batch uses one kind");
        }
        _perQueryHead = perQueryHead;
        _headPages[(sequence, head)] = entries.ToArray();
    }

    /// <summary>The arrays of inf_attention_batch for a pool of <paramref name="kvHeads"/> heads and
    /// <paramref name="pageSize"/>-token pages.</summary>
    internal Arrays Materialize(int kvHeads, int pageSize)
    {
        int[]? positions = null;
        if (_explicitPositions)
        {
            positions = _pagePositions.ToArray();
            for (int s = 0; s < Sequences; s++)
            {
                for (int j = _pageStarts[s]; j < _pageStarts[s + 1]; j++)
                {
                    if (positions[j] == -1)
                    {
                        positions[j] = (j - _pageStarts[s]) * pageSize;
                    }
                }
            }
        }
        int[]? headStarts = null;
        int[]? headIndices = null;
        if (_headPages.Count > 0)
        {
            int heads = PerQueryHeadLists ? QueryHeads : kvHeads;
            foreach (var key in _headPages.Keys)
            {
                if (key.Head >= heads)
                {
                    throw new ArgumentOutOfRangeException(nameof(kvHeads), $"head pages were set for KV head {key.Head} but the pool has {kvHeads}");
                }
            }
            kvHeads = heads;
            headStarts = new int[Sequences * kvHeads + 1];
            var indices = new List<int>();
            for (int s = 0; s < Sequences; s++)
            {
                int entries = _pageStarts[s + 1] - _pageStarts[s];
                for (int h = 0; h < kvHeads; h++)
                {
                    if (_headPages.TryGetValue((s, h), out int[]? chosen))
                    {
                        indices.AddRange(chosen);
                    }
                    else
                    {
                        for (int e = 0; e < entries; e++)
                        {
                            indices.Add(e);
                        }
                    }
                    headStarts[s * kvHeads + h + 1] = indices.Count;
                }
            }
            headIndices = indices.ToArray();
        }
        return new Arrays(_qStarts.ToArray(), _qPositions.ToArray(), _kvLengths.ToArray(), _pageStarts.ToArray(),
            _pageIds.ToArray(), positions, headStarts, headIndices);
    }

    internal sealed record Arrays(int[] QStarts, int[] QPositions, int[] KvLengths, int[] PageStarts, int[] PageIds,
        int[]? PagePositions, int[]? HeadPageStarts, int[]? HeadPageIndices);
}
