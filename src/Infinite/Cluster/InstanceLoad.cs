namespace Infinite.Cluster;

/// <summary>
/// The work of one instance in one decode step, as a cost model sees it (no engine or native types, so the cluster
/// simulator can build it too).
/// </summary>
/// <param name="BatchTokens">Tokens through the non-attention layers (the requests homed here: one each at decode).</param>
/// <param name="KvTokens">KV tokens attended here per request part: local parts of its own requests and the parts it
/// holds for requests homed elsewhere (attention over remote parts runs where the KV is).</param>
/// <param name="RemoteParts">(request, other instance) pairs this instance exchanges queries and partials for, as
/// debtor or creditor.</param>
/// <param name="ExchangeBytes">Bytes those exchanges move per step (q out, o and lse back, all layers).</param>
public sealed record InstanceLoad(int BatchTokens, IReadOnlyList<int> KvTokens, int RemoteParts, long ExchangeBytes)
{
    /// <summary>An instance with nothing to do.</summary>
    public static InstanceLoad Idle { get; } = new(0, [], 0, 0);
}
