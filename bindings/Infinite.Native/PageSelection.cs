namespace Infinite.Native;

/// <summary>
/// Which entries of each sequence's page table each retrieval head reads, as the selector chose them:
/// one ascending list per (sequence, KV head), or per (sequence, query head).
/// </summary>
public sealed class PageSelection
{
    internal PageSelection(int sequences, int listsPerSequence, bool perQueryHead, int[] starts, int[] indices)
    {
        Sequences = sequences;
        ListsPerSequence = listsPerSequence;
        PerQueryHead = perQueryHead;
        Starts = starts;
        Indices = indices;
    }

    public int Sequences { get; }

    /// <summary>KV heads, or query heads when <see cref="PerQueryHead"/>.</summary>
    public int ListsPerSequence { get; }

    public bool PerQueryHead { get; }

    /// <summary>Prefix offsets into <see cref="Indices"/>, one per list plus one.</summary>
    internal int[] Starts { get; }

    internal int[] Indices { get; }

    /// <summary>The entries (indices into the sequence's page table) list <paramref name="head"/> of
    /// <paramref name="sequence"/> reads.</summary>
    public ReadOnlySpan<int> Entries(int sequence, int head)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)sequence, (uint)Sequences, nameof(sequence));
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)head, (uint)ListsPerSequence, nameof(head));
        int list = sequence * ListsPerSequence + head;
        return Indices.AsSpan(Starts[list], Starts[list + 1] - Starts[list]);
    }
}
