using Infinite.Engine;

namespace Infinite.Runtime;

/// <summary>
/// Splits an engine <see cref="StepPlan"/> (global page ids, a home per sequence) into the per-instance plans of
/// <c>inf_step_plan</c> + <c>inf_step_exchange</c>. A sequence's home gets its tokens and its local page entries with
/// their positions; every other instance holding some of its pages gets a served part and the home a matching remote
/// part, which carries this step's K and V when some new token lands in a page there. Orders follow the header:
/// remote parts by peer rank, then sequence; served parts by home rank, then in that home's remote-part order.
/// Pure and deterministic, so a plan shipped to another process (MPI) is built exactly as a local one.
/// </summary>
internal static class DistributedPlanner
{
    public static DistributedStep Split(StepPlan plan, int instances, int pagesPerInstance, int pageSize, long stepId)
    {
        ArgumentNullException.ThrowIfNull(plan);
        int sequences = plan.SequenceCount;
        int[] homes = Homes(plan, instances);
        var builders = new Builder[instances];
        for (int i = 0; i < instances; i++)
        {
            builders[i] = new Builder();
        }

        // Pass 1: each sequence's tokens and local entries on its home; its pages elsewhere, per instance.
        var localIndex = new int[sequences];
        var tokenOffset = new int[sequences];
        var elsewhere = new SortedDictionary<int, Part>[sequences];
        for (int s = 0; s < sequences; s++)
        {
            int home = homes[s];
            Builder h = builders[home];
            localIndex[s] = h.KvLengths.Count;
            tokenOffset[s] = h.TokenIds.Count;
            int q0 = plan.QStarts[s], q1 = plan.QStarts[s + 1], kv = plan.KvLengths[s];
            for (int t = q0; t < q1; t++)
            {
                h.TokenIds.Add(plan.TokenIds[t]);
                h.Positions.Add(plan.Positions[t]);
            }
            h.QStarts.Add(h.TokenIds.Count);
            h.KvLengths.Add(kv);
            var parts = new SortedDictionary<int, Part>();
            int first = plan.PageStarts[s], entries = plan.PageStarts[s + 1] - first;
            for (int e = 0; e < entries && (long)e * pageSize < kv; e++)
            {
                int page = plan.PageIds[first + e];
                if ((uint)page >= (uint)(instances * pagesPerInstance))
                {
                    throw new ArgumentException($"PageIds[{first + e}] = {page} (sequence {s}) is outside the {instances} x {pagesPerInstance} global pages", nameof(plan));
                }
                int owner = page / pagesPerInstance, local = page % pagesPerInstance;
                if (owner == home)
                {
                    h.PageIds.Add(local);
                    h.PagePositions.Add(e * pageSize);
                }
                else
                {
                    if (!parts.TryGetValue(owner, out Part? part))
                    {
                        parts[owner] = part = new Part(s);
                    }
                    part.Pages.Add(local);
                    part.Positions.Add(e * pageSize);
                }
            }
            h.PageStarts.Add(h.PageIds.Count);
            for (int t = q0; t < q1; t++)
            {
                int entry = plan.Positions[t] / pageSize;
                if (plan.Positions[t] < 0 || entry >= entries || plan.Positions[t] >= kv)
                {
                    throw new ArgumentException($"token {t} of sequence {s} is at position {plan.Positions[t]}, beyond its page table ({entries} pages of {pageSize}) or its kv length {kv}", nameof(plan));
                }
                int owner = plan.PageIds[first + entry] / pagesPerInstance;
                if (owner != home)
                {
                    parts[owner].SendsKv = true;
                }
            }
            elsewhere[s] = parts;
        }

        // Pass 2: remote parts (home side) and served parts (creditor side), in the header's orders. Iterating
        // sequences in plan order visits each home's sequences in ascending local order.
        var remote = new List<(int Rank, int Sequence, bool SendsKv)>[instances];
        var served = new List<(int Home, int LocalSequence, Part Part)>[instances];
        for (int i = 0; i < instances; i++)
        {
            remote[i] = [];
            served[i] = [];
        }
        for (int s = 0; s < sequences; s++)
        {
            foreach ((int owner, Part part) in elsewhere[s])
            {
                remote[homes[s]].Add((owner, localIndex[s], part.SendsKv));
                served[owner].Add((homes[s], localIndex[s], part));
            }
        }

        // Logit rows, in the engine's order, routed to the home that computes them.
        var sources = new (int Instance, int Row)[plan.LogitTokens.Length];
        var logitTokens = new List<int>[instances];
        for (int i = 0; i < instances; i++)
        {
            logitTokens[i] = [];
        }
        for (int r = 0; r < sources.Length; r++)
        {
            int t = plan.LogitTokens[r];
            int s = SequenceOf(plan.QStarts, t, r);
            int home = homes[s];
            sources[r] = (home, logitTokens[home].Count);
            logitTokens[home].Add(tokenOffset[s] + t - plan.QStarts[s]);
        }
        var plans = new InstancePlan[instances];
        for (int i = 0; i < instances; i++)
        {
            var parts = remote[i].OrderBy(r => r.Rank).ThenBy(r => r.Sequence).ToList();
            var serving = served[i].OrderBy(p => p.Home).ThenBy(p => p.LocalSequence).ToList();
            plans[i] = Build(builders[i], [.. logitTokens[i]], parts, serving, plan, pageSize, stepId);
        }

        return new DistributedStep(plans, sources);
    }

    private static int[] Homes(StepPlan plan, int instances)
    {
        int sequences = plan.SequenceCount;
        if (plan.Homes is null)
        {
            return new int[sequences];
        }
        if (plan.Homes.Length != sequences)
        {
            throw new ArgumentException($"Homes has {plan.Homes.Length} entries but the plan has {sequences} sequences", nameof(plan));
        }
        for (int s = 0; s < sequences; s++)
        {
            if ((uint)plan.Homes[s] >= (uint)instances)
            {
                throw new ArgumentException($"Homes[{s}] = {plan.Homes[s]} is outside the {instances} instances", nameof(plan));
            }
        }
        return plan.Homes;
    }

    private static int SequenceOf(int[] qStarts, int token, int row)
    {
        int sequences = qStarts.Length - 1;
        if ((uint)token >= (uint)qStarts[sequences])
        {
            throw new ArgumentException($"LogitTokens[{row}] = {token} is outside the step's {qStarts[sequences]} tokens", "plan");
        }
        // The last sequence whose first token is at or before the token (sequences with no tokens are skipped).
        int lo = 0, hi = sequences - 1;
        while (lo < hi)
        {
            int mid = (lo + hi + 1) / 2;
            if (qStarts[mid] <= token)
            {
                lo = mid;
            }
            else
            {
                hi = mid - 1;
            }
        }
        return lo;
    }

    private static InstancePlan Build(Builder b, int[] logitTokens, List<(int Rank, int Sequence, bool SendsKv)> remote,
        List<(int Home, int LocalSequence, Part Part)> serving, StepPlan plan, int pageSize, long stepId)
    {
        var qStarts = new List<int> { 0 };
        var positions = new List<int>();
        var kvLengths = new List<int>();
        var pageStarts = new List<int> { 0 };
        var pageIds = new List<int>();
        var pagePositions = new List<int>();
        var receives = new int[serving.Count];
        var appendPages = new List<int>();
        bool anyReceives = false;
        for (int i = 0; i < serving.Count; i++)
        {
            Part part = serving[i].Part;
            int s = part.Sequence;
            for (int t = plan.QStarts[s]; t < plan.QStarts[s + 1]; t++)
            {
                int position = plan.Positions[t];
                positions.Add(position);
                // The row is stored here when its page is one of this part's pages.
                int at = part.Positions.IndexOf(position / pageSize * pageSize);
                appendPages.Add(at >= 0 ? part.Pages[at] : -1);
            }
            qStarts.Add(positions.Count);
            kvLengths.Add(plan.KvLengths[s]);
            pageIds.AddRange(part.Pages);
            pagePositions.AddRange(part.Positions);
            pageStarts.Add(pageIds.Count);
            receives[i] = part.SendsKv ? 1 : 0;
            anyReceives |= part.SendsKv;
        }
        return new InstancePlan
        {
            StepId = stepId,
            Sparse = plan.Sparse,
            TokenIds = [.. b.TokenIds],
            Positions = [.. b.Positions],
            QStarts = [.. b.QStarts],
            KvLengths = [.. b.KvLengths],
            PageStarts = [.. b.PageStarts],
            PageIds = [.. b.PageIds],
            PagePositions = [.. b.PagePositions],
            LogitTokens = logitTokens,
            RemoteSequences = remote.Select(r => r.Sequence).ToArray(),
            RemoteRanks = remote.Select(r => r.Rank).ToArray(),
            RemoteSendsKv = remote.Select(r => r.SendsKv ? 1 : 0).ToArray(),
            ServedRanks = serving.Select(p => p.Home).ToArray(),
            ServedQStarts = [.. qStarts],
            ServedPositions = [.. positions],
            ServedKvLengths = [.. kvLengths],
            ServedPageStarts = [.. pageStarts],
            ServedPageIds = [.. pageIds],
            ServedPagePositions = [.. pagePositions],
            ServedReceivesKv = receives,
            ServedAppendPages = anyReceives ? [.. appendPages] : null,
        };
    }

    /// <summary>One instance's share of the sequences it is home to.</summary>
    private sealed class Builder
    {
        public List<int> TokenIds { get; } = [];
        public List<int> Positions { get; } = [];
        public List<int> QStarts { get; } = [0];
        public List<int> KvLengths { get; } = [];
        public List<int> PageStarts { get; } = [0];
        public List<int> PageIds { get; } = [];
        public List<int> PagePositions { get; } = [];
    }

    /// <summary>A sequence's pages on one instance other than its home.</summary>
    private sealed class Part(int sequence)
    {
        public int Sequence { get; } = sequence;
        public List<int> Pages { get; } = [];
        public List<int> Positions { get; } = [];
        public bool SendsKv { get; set; }
    }
}
