namespace Infinite.Native;

/// <summary>
/// One forward step for <see cref="NativeModel.Step(PagePool, in NativeStepPlan, Span{float})"/> (mirrors
/// <c>inf_step_plan</c>): sequence s feeds tokens <c>QStarts[s] .. QStarts[s+1]-1</c> at consecutive positions
/// ending at <c>KvLengths[s] - 1</c>, its page table is <c>PageIds[PageStarts[s] .. PageStarts[s+1]-1]</c>, and
/// logits come back for the tokens listed in <see cref="LogitTokens"/>. The spans are read during the call only.
/// </summary>
public readonly ref struct NativeStepPlan
{
    public ReadOnlySpan<int> TokenIds { get; init; }
    public ReadOnlySpan<int> Positions { get; init; }
    /// <summary>[sequences + 1].</summary>
    public ReadOnlySpan<int> QStarts { get; init; }
    /// <summary>[sequences].</summary>
    public ReadOnlySpan<int> KvLengths { get; init; }
    /// <summary>[sequences + 1].</summary>
    public ReadOnlySpan<int> PageStarts { get; init; }
    public ReadOnlySpan<int> PageIds { get; init; }
    public ReadOnlySpan<int> LogitTokens { get; init; }
    /// <summary>Optional [PageIds.Length]: first key position of each entry (multiples of the page size, ascending
    /// within a sequence); empty: entry j of a sequence holds positions j * page size onwards. With an exchange a
    /// sequence's table lists only its pages on this instance, so the positions are needed there.</summary>
    public ReadOnlySpan<int> PagePositions { get; init; }

    public int Sequences => KvLengths.Length;
}
