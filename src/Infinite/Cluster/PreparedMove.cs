namespace Infinite.Cluster;

/// <summary>
/// A move whose destination pages are reserved but not yet in the request's page table: the caller copies
/// <see cref="Copies"/>, then commits (the table switches to the new pages, the old ones are freed) or aborts (the
/// reservation is freed, the table never changed). See <see cref="ClusterPageSpace.PrepareMove"/>.
/// </summary>
public sealed class PreparedMove
{
    internal PreparedMove(PageMove move, int home, PageCopy[] copies, int[] tableIndices)
    {
        Move = move;
        Home = home;
        Copies = copies;
        TableIndices = tableIndices;
    }

    /// <summary>The planned move, with <see cref="PageMove.Pages"/> cut to the pages actually moved.</summary>
    public PageMove Move { get; }
    /// <summary>The request whose pages move.</summary>
    public long RequestId => Move.RequestId;

    /// <summary>Old and new global page per moved page, oldest KV first.</summary>
    public IReadOnlyList<PageCopy> Copies { get; }

    /// <summary>True until committed or aborted (also aborted when the request is released or an instance of the
    /// move fails meanwhile).</summary>
    public bool IsPending { get; internal set; } = true;

    internal int Home { get; }
    internal int[] TableIndices { get; }
}
