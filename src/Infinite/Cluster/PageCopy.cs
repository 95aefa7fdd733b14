namespace Infinite.Cluster;

/// <summary>One page of a prepared move: the executor copies the KV of global page <paramref name="OldPage"/> into
/// global page <paramref name="NewPage"/> (on another instance).</summary>
public readonly record struct PageCopy(int OldPage, int NewPage);
