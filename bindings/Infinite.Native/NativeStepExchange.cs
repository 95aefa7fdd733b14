namespace Infinite.Native;

/// <summary>
/// The distributed part of one instance's step (mirrors <c>inf_step_exchange</c>; see the header for the
/// protocol). Home side: <see cref="RemoteSequences"/>[i] of this plan has pages on peer <see cref="RemoteRanks"/>[i]
/// (grouped by rank ascending, then sequence ascending). Serving side: part i belongs to a sequence homed on
/// <see cref="ServedRanks"/>[i] (grouped by that rank ascending, then in that rank's remote-part order), with query
/// rows <c>ServedQStarts[i] .. ServedQStarts[i+1]-1</c> at <see cref="ServedPositions"/>, keys below
/// <see cref="ServedKvLengths"/>[i] in local pages <c>ServedPageIds[ServedPageStarts[i] ..]</c> starting at
/// <see cref="ServedPagePositions"/>. Every instance of the group steps with the same <see cref="StepId"/> at the
/// same time. The spans are read during the call only.
/// </summary>
public readonly ref struct NativeStepExchange
{
    public Communicator Communicator { get; init; }

    /// <summary>The same on every instance for one step and increasing from step to step: a message left over from a
    /// failed step carries an older id and is dropped.</summary>
    public long StepId { get; init; }

    public ReadOnlySpan<int> RemoteSequences { get; init; }
    public ReadOnlySpan<int> RemoteRanks { get; init; }
    /// <summary>[remote parts] nonzero where this step's K and V rows travel with the query, because the peer stores
    /// some of them; empty: none do.</summary>
    public ReadOnlySpan<int> RemoteSendsKv { get; init; }

    public ReadOnlySpan<int> ServedRanks { get; init; }
    /// <summary>[served parts + 1]; may be empty when nothing is served.</summary>
    public ReadOnlySpan<int> ServedQStarts { get; init; }
    public ReadOnlySpan<int> ServedPositions { get; init; }
    public ReadOnlySpan<int> ServedKvLengths { get; init; }
    /// <summary>[served parts + 1]; may be empty when nothing is served.</summary>
    public ReadOnlySpan<int> ServedPageStarts { get; init; }
    public ReadOnlySpan<int> ServedPageIds { get; init; }
    public ReadOnlySpan<int> ServedPagePositions { get; init; }
    /// <summary>[served parts] nonzero where the home sends K and V (must match its RemoteSendsKv); empty: none.</summary>
    public ReadOnlySpan<int> ServedReceivesKv { get; init; }
    /// <summary>[served rows]: the local page storing each row's K and V (slot = position % page size), or -1;
    /// empty when no part receives K and V.</summary>
    public ReadOnlySpan<int> ServedAppendPages { get; init; }

    public int RemoteParts => RemoteSequences.Length;
    public int ServedParts => ServedKvLengths.Length;
}
