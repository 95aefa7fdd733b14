using Infinite.Engine;

namespace Infinite.Runtime;

/// <summary>
/// Checks that a <see cref="StepPlan"/>'s arrays agree with one another in length. Native code derives every
/// array's extent from counts and offsets (q_starts, page_starts), so these checks are what keeps it inside
/// the managed arrays; the values themselves (positions, page ids) are each executor's own business.
/// </summary>
internal static class StepPlanShape
{
    public static void Check(StepPlan plan, int logitsLength, int vocabSize)
    {
        ArgumentNullException.ThrowIfNull(plan);
        Require(plan.TokenIds, nameof(plan.TokenIds));
        Require(plan.Positions, nameof(plan.Positions));
        Require(plan.QStarts, nameof(plan.QStarts));
        Require(plan.KvLengths, nameof(plan.KvLengths));
        Require(plan.PageStarts, nameof(plan.PageStarts));
        Require(plan.PageIds, nameof(plan.PageIds));
        Require(plan.LogitTokens, nameof(plan.LogitTokens));
        int sequences = plan.SequenceCount;
        if (sequences == 0)
        {
            throw new ArgumentException("the plan has no sequences (KvLengths is empty)", nameof(plan));
        }
        if (plan.Positions.Length != plan.TokenCount)
        {
            throw new ArgumentException($"Positions has {plan.Positions.Length} entries but TokenIds has {plan.TokenCount}", nameof(plan));
        }
        CheckOffsets(plan.QStarts, sequences, plan.TokenCount, nameof(plan.QStarts), "TokenIds");
        CheckOffsets(plan.PageStarts, sequences, plan.PageIds.Length, nameof(plan.PageStarts), "PageIds");
        long needed = (long)plan.LogitTokens.Length * vocabSize;
        if (logitsLength < needed)
        {
            throw new ArgumentException($"logits has {logitsLength} floats but {plan.LogitTokens.Length} logit rows of vocab {vocabSize} need {needed}", "logits");
        }
        if (plan.Sparse is { } sparse)
        {
            if (sparse.SelectionSlots is { } slots && slots.Length != sequences)
            {
                throw new ArgumentException($"Sparse.SelectionSlots has {slots.Length} entries but the plan has {sequences} sequences", nameof(plan));
            }
            if (sparse.Reselect is { } reselect && reselect.Length != sequences)
            {
                throw new ArgumentException($"Sparse.Reselect has {reselect.Length} entries but the plan has {sequences} sequences", nameof(plan));
            }
            if ((sparse.SelectionSlots is null) != (sparse.Reselect is null))
            {
                throw new ArgumentException("Sparse.SelectionSlots and Sparse.Reselect must be given together", nameof(plan));
            }
        }
    }

    private static void Require(int[]? array, string name)
    {
        if (array is null)
        {
            throw new ArgumentException($"{name} is null", "plan");
        }
    }

    private static void CheckOffsets(int[] offsets, int sequences, int total, string name, string target)
    {
        if (offsets.Length != sequences + 1)
        {
            throw new ArgumentException($"{name} has {offsets.Length} entries, expected sequences + 1 = {sequences + 1}", "plan");
        }
        if (offsets[0] != 0)
        {
            throw new ArgumentException($"{name}[0] is {offsets[0]}, expected 0", "plan");
        }
        for (int s = 0; s < sequences; s++)
        {
            if (offsets[s + 1] < offsets[s])
            {
                throw new ArgumentException($"{name} decreases at sequence {s} ({offsets[s]} -> {offsets[s + 1]})", "plan");
            }
        }
        if (offsets[sequences] != total)
        {
            throw new ArgumentException($"{name} ends at {offsets[sequences]} but {target} has {total} entries", "plan");
        }
    }
}
