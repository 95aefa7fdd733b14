namespace Infinite.Cluster;

/// <summary>A planned migration of <paramref name="Pages"/> KV pages of a request from instance
/// <paramref name="From"/> to <paramref name="To"/> (the paper's <c>move_kvcache(request, blocks, destination)</c>).</summary>
public readonly record struct PageMove(long RequestId, int From, int To, int Pages);
