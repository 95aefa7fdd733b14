namespace Infinite.Engine;

/// <summary>
/// An executor whose KV cache spans several instances and can migrate pages between them (the gManager's
/// <c>move(request, blocks, destination)</c>). The engine calls it between steps, after the destination pages are
/// reserved and before the moves are committed, so a failed move is aborted with nothing half-applied.
/// </summary>
public interface IPageMover
{
    /// <summary>Copies each source page (global id, every layer's K, V and summaries) into its destination page on
    /// another instance; all pairs of instances move concurrently.</summary>
    /// <exception cref="InstanceFailedException">An instance a move needs is gone.</exception>
    void MovePages(IReadOnlyList<(int FromGlobal, int ToGlobal)> moves);
}
