using Infinite.Cluster;

namespace Infinite.Engine;

/// <summary>
/// Continuous batching: decides which tokens of which requests each step feeds and gives them pages. Running decodes
/// go first (one token each, oldest first), then prefill chunks of admitted prompts, then new admissions, all within
/// the per-step token budget. When a decode needs a page and none is free, the most recently admitted request gives
/// back all its pages and returns to the front of the queue to recompute its tokens later. Pages come from an
/// <see cref="IKvPageSpace"/>: one pool (<see cref="PageAllocator"/>), or a cluster where each admitted request gets a
/// home instance and may borrow pages on others; plans then carry each sequence's home. Not thread-safe: the engine
/// calls it under its lock.
/// </summary>
internal sealed class StepScheduler
{
    private readonly LinkedList<Sequence> _waiting = new();
    private readonly List<Sequence> _running = []; // in admission order
    private readonly Stack<int> _freeSlots = new();
    private readonly int _pageSize;
    private readonly int _maxBatchTokens;
    private readonly int _maxRunning;
    private readonly SparseOptions? _sparse;
    private readonly bool[]? _streamingHeads;
    private long _admissions;

    public StepScheduler(IKvPageSpace pages, int pageSize, int maxBatchTokens, int maxRunning, SparseOptions? sparse,
        int selectionSlots)
    {
        Pages = pages;
        _pageSize = pageSize;
        _maxBatchTokens = maxBatchTokens;
        _sparse = sparse;
        _maxRunning = sparse is null ? maxRunning : Math.Min(maxRunning, selectionSlots);
        _streamingHeads = sparse?.StreamingHeads is { } heads ? [.. heads] : null;
        if (sparse is not null)
        {
            for (int slot = selectionSlots - 1; slot >= 0; slot--)
                _freeSlots.Push(slot);
        }
    }

    public IKvPageSpace Pages { get; }
    public int WaitingCount => _waiting.Count;
    public int RunningCount => _running.Count;
    public long Preemptions { get; private set; }
    public bool IsIdle => _waiting.Count == 0 && _running.Count == 0;
    public IReadOnlyList<Sequence> Running => _running;
    public IEnumerable<Sequence> Waiting => _waiting;

    public void Enqueue(Sequence sequence) => _waiting.AddLast(sequence);

    /// <summary>Takes a request out of the engine for good, returning its pages and slot.</summary>
    public void Remove(Sequence sequence)
    {
        if (sequence.State == SequenceState.Waiting)
            _waiting.Remove(sequence);
        else if (sequence.State == SequenceState.Running)
            _running.Remove(sequence);
        ReleaseResources(sequence);
        sequence.State = SequenceState.Finished;
    }

    /// <summary>Plans the next step, or returns null when nothing can run. Requests that cannot fit even alone are
    /// removed and reported in <paramref name="failures"/>.</summary>
    public (StepPlan Plan, ScheduledChunk[] Chunks)? Next(List<(Sequence Sequence, string Message)> failures)
    {
        while (true)
        {
            var chunks = new List<ScheduledChunk>();
            int budget = _maxBatchTokens;
            int logitRows = 0;
            ScheduleDecodes(chunks, ref budget, ref logitRows, failures);
            int outstanding = SchedulePrefills(chunks, ref budget, ref logitRows);
            Admit(chunks, ref budget, ref logitRows, outstanding, failures);
            if (chunks.Count > 0)
                return (BuildPlan(chunks), [.. chunks]);
            if (_running.Count == 0)
                return null;
            // Admitted prompts hold pages but none can grow: give the newest one's pages to the others.
            Preempt(_running[^1]);
        }
    }

    private void ScheduleDecodes(List<ScheduledChunk> chunks, ref int budget, ref int logitRows,
        List<(Sequence, string)> failures)
    {
        for (int i = 0; i < _running.Count && budget > 0; i++)
        {
            Sequence s = _running[i];
            if (!s.Prefilled)
                continue;
            int pages = PageAllocator.PagesFor(s.Computed + 1, _pageSize);
            bool scheduled = true;
            while (!Pages.TryGrow(s.Id, s.Home, s.Pages, pages))
            {
                // Victims are newer than every decode scheduled so far, so no scheduled chunk is lost. In a cluster a
                // request beyond what one request can ever hold fails at once instead of preempting unrelated
                // requests on other instances first (one pool keeps its historical behaviour).
                Sequence victim = _running[^1];
                bool hopeless = Pages.Instances > 1 && pages > Pages.MaxPagesPerRequest;
                if ((victim == s && _running.Count == 1) || hopeless)
                {
                    failures.Add((s, $"The request needs {pages} KV pages but the cache has only {Pages.MaxPagesPerRequest}."));
                    Remove(s);
                }
                else
                {
                    Preempt(victim);
                }
                if (victim == s || hopeless)
                {
                    scheduled = false;
                    i--;
                    break;
                }
            }
            if (scheduled)
            {
                // A replayed token (see Preempt) rebuilds KV a decode once wrote; its successor is already known.
                bool replay = s.Computed < s.ReplayUntil;
                chunks.Add(new ScheduledChunk(s, s.Computed, 1, IsDecode: true, replay ? -1 : logitRows++));
                budget--;
            }
        }
    }

    /// <summary>Continues prompts admitted earlier; returns the pages they still lack to finish (reserved against
    /// new admissions so admitted prompts can complete).</summary>
    private int SchedulePrefills(List<ScheduledChunk> chunks, ref int budget, ref int logitRows)
    {
        int outstanding = 0;
        foreach (Sequence s in _running)
        {
            if (s.Prefilled)
                continue;
            if (budget > 0)
                ScheduleChunk(s, chunks, ref budget, ref logitRows);
            outstanding += Math.Max(0, PagesToFinishPrefill(s) - s.Pages.Count);
        }
        return outstanding;
    }

    private void Admit(List<ScheduledChunk> chunks, ref int budget, ref int logitRows, int outstanding,
        List<(Sequence, string)> failures)
    {
        while (_waiting.First is { } node && budget > 0 && _running.Count < _maxRunning)
        {
            Sequence s = node.Value;
            // In a cluster the engine's request check sees the whole cache, but a request can only ever hold
            // MaxPagesPerRequest pages: a prompt beyond that would prefill, stall and be preempted forever.
            int promptPages = PageAllocator.PagesFor(s.Tokens.Count, _pageSize);
            if (Pages.Instances > 1 && promptPages > Pages.MaxPagesPerRequest)
            {
                failures.Add((s, $"The request needs {promptPages} KV pages but the cache has only {Pages.MaxPagesPerRequest}."));
                Remove(s);
                continue;
            }
            int need = PagesToFinishPrefill(s);
            if (Pages.FreePages - outstanding < need)
                break; // first come, first served: later requests wait behind it
            int home = Pages.PlaceRequest(s.Id, need);
            if (home < 0)
                break;
            _waiting.RemoveFirst();
            s.Home = home;
            s.State = SequenceState.Running;
            s.AdmitOrder = ++_admissions;
            if (_sparse is not null)
                s.Slot = _freeSlots.Pop();
            _running.Add(s);
            ScheduleChunk(s, chunks, ref budget, ref logitRows);
            outstanding += need - s.Pages.Count;
        }
    }

    /// <summary>Pages for all current tokens plus the first one generated after them (at most what one request can
    /// ever hold: a longer one is admitted, prefilled as far as it fits and fails when it cannot grow alone).</summary>
    private int PagesToFinishPrefill(Sequence s) =>
        Math.Min(PageAllocator.PagesFor(s.Tokens.Count + 1, _pageSize), Pages.MaxPagesPerRequest);

    private void ScheduleChunk(Sequence s, List<ScheduledChunk> chunks, ref int budget, ref int logitRows)
    {
        int capacity = (s.Pages.Count + Pages.AvailableTo(s.Id, s.Home)) * _pageSize - s.Computed;
        // A replay prefills the prompt only; the generated tokens follow as decodes.
        int target = s.ReplayUntil > 0 ? s.PromptLength : s.Tokens.Count;
        int count = Math.Min(Math.Min(target - s.Computed, budget), capacity);
        if (_sparse is not null && _maxBatchTokens >= 3)
        {
            // The native step tells a decode by its single query row, and a decode attends with the decode windows and
            // a page selection: a one-token chunk of a prompt under way would not be prefilled like the rest of it.
            // Never leave one token for later, nor take one alone after the first (wait for a step with more room;
            // with a budget of 1 or 2 tokens a step one-token chunks cannot be avoided).
            if (target - s.Computed - count == 1)
                count--;
            if (count == 1 && s.Computed > 0)
                count = 0;
        }
        if (count <= 0)
            return;
        if (!Pages.TryGrow(s.Id, s.Home, s.Pages, PageAllocator.PagesFor(s.Computed + count, _pageSize)))
            throw new InvalidOperationException("Page accounting is inconsistent: free pages vanished while planning.");
        bool finishes = s.Computed + count == target && s.ReplayUntil == 0;
        chunks.Add(new ScheduledChunk(s, s.Computed, count, IsDecode: false, finishes ? logitRows++ : -1));
        budget -= count;
    }

    private void Preempt(Sequence victim)
    {
        _running.Remove(victim);
        ReleaseResources(victim);
        // With sparse attention a recompute is not a prefill of every token: each generated token's KV was written by
        // a decode (decode windows, a page selection), so after the prompt they are replayed one decode at a time,
        // with the same reselection schedule, to rebuild the same KV and so the same next tokens.
        victim.ReplayUntil = _sparse is not null && victim.Generated > 0 ? victim.Tokens.Count - 1 : 0;
        victim.Computed = 0;
        victim.Prefilled = false;
        victim.DecodeSteps = 0;
        victim.State = SequenceState.Waiting;
        _waiting.AddFirst(victim);
        Preemptions++;
    }

    private void ReleaseResources(Sequence s)
    {
        Pages.Release(s.Id, s.Pages);
        s.Home = -1;
        if (s.Slot >= 0)
        {
            _freeSlots.Push(s.Slot);
            s.Slot = -1;
        }
        s.HasSelection = false;
    }

    private StepPlan BuildPlan(List<ScheduledChunk> chunks)
    {
        int tokens = 0, pages = 0;
        foreach (ScheduledChunk c in chunks)
        {
            tokens += c.Count;
            pages += PageAllocator.PagesFor(c.Start + c.Count, _pageSize);
        }
        var tokenIds = new int[tokens];
        var positions = new int[tokens];
        var qStarts = new int[chunks.Count + 1];
        var kvLengths = new int[chunks.Count];
        var pageStarts = new int[chunks.Count + 1];
        var pageIds = new int[pages];
        var logitTokens = new List<int>();
        var slots = _sparse is null ? null : new int[chunks.Count];
        var reselect = _sparse is null ? null : new bool[chunks.Count];
        var homes = Pages.Instances == 1 ? null : new int[chunks.Count];
        int t = 0, p = 0;
        for (int i = 0; i < chunks.Count; i++)
        {
            ScheduledChunk c = chunks[i];
            Sequence s = c.Sequence;
            qStarts[i] = t;
            for (int j = 0; j < c.Count; j++, t++)
            {
                tokenIds[t] = s.Tokens[c.Start + j];
                positions[t] = c.Start + j;
            }
            if (c.LogitRow >= 0)
                logitTokens.Add(t - 1);
            kvLengths[i] = c.Start + c.Count;
            pageStarts[i] = p;
            int n = PageAllocator.PagesFor(kvLengths[i], _pageSize);
            s.Pages.CopyTo(0, pageIds, p, n);
            p += n;
            if (homes is not null)
                homes[i] = s.Home;
            if (_sparse is not null)
            {
                slots![i] = s.Slot;
                // The first one-row step past the budget selects whatever its step count: before it the slot holds no
                // selection to reuse (steps within the budget read every page and store none). The native step treats
                // every one-row sequence as a decode, so a prefill chunk of one token counts.
                bool selects = c.Count == 1 && _sparse.BudgetTokens > 0 && kvLengths[i] > _sparse.BudgetTokens;
                reselect![i] = (c.IsDecode && s.DecodeSteps % _sparse.ReuseInterval == 0) || (selects && !s.HasSelection);
                s.HasSelection |= selects && reselect[i];
            }
        }
        qStarts[^1] = t;
        pageStarts[^1] = p;
        return new StepPlan
        {
            TokenIds = tokenIds,
            Positions = positions,
            QStarts = qStarts,
            KvLengths = kvLengths,
            PageStarts = pageStarts,
            PageIds = pageIds,
            LogitTokens = [.. logitTokens],
            Homes = homes,
            Sparse = _sparse is null ? null : new SparseStep
            {
                StreamingHeads = _streamingHeads,
                DecodeSinkTokens = _sparse.DecodeSinkTokens,
                DecodeLocalTokens = _sparse.DecodeLocalTokens,
                PrefillSinkTokens = _sparse.PrefillSinkTokens,
                PrefillLocalTokens = _sparse.PrefillLocalTokens,
                BudgetTokens = _sparse.BudgetTokens,
                PerQueryHead = _sparse.PerQueryHead,
                SelectionSlots = slots,
                Reselect = reselect,
            },
        };
    }
}
