using Infinite.Cluster;
using Infinite.Engine;

namespace Infinite.Simulation;

/// <summary>
/// The discrete-event cluster simulator. Requests arrive (workload times) and wait, first come first served, either in
/// the queue of the instance a load balancer sends them to on arrival or in one cluster-wide queue
/// (<see cref="SimulationOptions.Dispatch"/>), and are placed by the policy's page space (the real scheduler's <see cref="IKvPageSpace"/>: home choice, local
/// pages, borrowing); each instance then steps on its own clock with the engine's batching rule
/// (<see cref="SimulatedBatcher"/>), and each step lasts what the roofline cost model says its FLOPs and bytes take.
/// Attention over pages on other instances is priced where the pages are (creditors pay for it in their own steps,
/// debtors wait for the slowest remote part plus the query/partial exchange). Policies that migrate get the
/// gManager's plan every <see cref="SimulationOptions.PlanEverySteps"/> steps per instance; moved pages cost link
/// time on both instances' next steps (overlapped with their compute).
/// </summary>
public sealed partial class ClusterSimulator
{
    private readonly SimulationPolicy _policy;
    private readonly ClusterLayout _layout;
    private readonly SimulationOptions _options;
    private readonly IReadOnlyList<WorkloadRequest> _workload;
    private readonly RooflineCostModel _cost;
    private readonly EventQueue _events = new();
    private LinkedList<SimRequest>[] _queues = [];
    private bool _perInstance;
    private int _queued;
    private long[] _outstanding = [];
    private int _roundRobin;
    // Per-instance dispatch retries a blocked head only after pages were freed (or demand fell) since it failed.
    private long _spaceVersion;
    private long[] _blockedVersion = [];
    private int[] _blockedHead = [];
    private readonly UtilisationRecorder _samples;
    private IKvPageSpace _space = null!;
    private SimulatedBatcher.PageOps _ops = null!;
    private SimRequest[] _requests = [];
    private SimulatedBatcher[] _instances = [];
    private int[] _foreignPages = [];
    private double[] _pendingMigrationBytes = [];
    private Link[] _pendingMigrationLink = [];
    private int _done;
    private long _stepCount;
    private long _pagesMigrated;
    private long _preemptions;
    private double _busySeconds;
    private double _lastCompletion;
    private long _nextPlanStep;
    private long _admissions;
    private bool _clusterBusy;
    private bool _clusterStepScheduled;
    private readonly int _scale;

    public ClusterSimulator(SimulationPolicy policy, ClusterLayout layout, IReadOnlyList<WorkloadRequest> workload,
        SimulationOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(layout);
        ArgumentNullException.ThrowIfNull(workload);
        layout.Validate();
        _policy = policy;
        _layout = policy.Arrange(layout);
        _layout.Validate();
        // Limits are per instance of the layout's size; an arranged instance of k times the GPUs (vLLM-S) gets k
        // times the step budget and running slots, as an operator would configure it.
        _scale = Math.Max(1, _layout.GpusPerInstance / layout.GpusPerInstance);
        _options = options ?? new SimulationOptions();
        _options.Validate();
        _workload = workload;
        _cost = policy.CreateCostModel(_layout);
        _samples = new UtilisationRecorder(_options.MaxSamples);
    }

    /// <summary>The layout the policy runs (after <see cref="SimulationPolicy.Arrange"/>).</summary>
    public ClusterLayout Layout => _layout;

    /// <summary>Runs the whole workload to its end and returns what happened.</summary>
    public SimulationResult Run()
    {
        _space = _policy.CreatePageSpace(_layout);
        int n = _space.Instances;
        if (n != _layout.Instances)
            throw new InvalidOperationException($"Policy {_policy.Name} made a page space of {n} instances for a layout of {_layout.Instances}.");
        _instances = new SimulatedBatcher[n];
        for (int i = 0; i < n; i++)
            _instances[i] = new SimulatedBatcher(i, n, _options.MaxBatchTokens * _scale, _layout.PageTokens);
        _ops = new SimulatedBatcher.PageOps(TryGrowDecode, Preempt, RejectRunning, AnythingRunningBesides);
        _perInstance = _options.Dispatch != DispatchMode.Global && n > 1;
        _queues = new LinkedList<SimRequest>[_perInstance ? n : 1];
        for (int q = 0; q < _queues.Length; q++)
            _queues[q] = new LinkedList<SimRequest>();
        _outstanding = new long[n];
        _blockedVersion = new long[n];
        _blockedHead = new int[n];
        Array.Fill(_blockedVersion, -1);
        _foreignPages = new int[n];
        _pendingMigrationBytes = new double[n];
        _pendingMigrationLink = new Link[n];
        _requests = new SimRequest[_workload.Count];
        for (int r = 0; r < _workload.Count; r++)
        {
            WorkloadRequest w = _workload[r];
            if (w.PromptTokens < 1 || w.OutputTokens < 1 || !(w.ArrivalSeconds >= 0))
                throw new ArgumentException($"Request {r}: needs prompt and output tokens >= 1 and an arrival time >= 0, got {w}.");
            _requests[r] = new SimRequest(r, w, n);
            _events.Schedule(w.ArrivalSeconds, new SimEvent(SimEventKind.Arrival, r));
        }
        _nextPlanStep = (long)_options.PlanEverySteps * (_options.SharedHost ? 1 : n);
        Sample(0, force: true);

        while (_events.TryTake(out SimEvent e, out double now))
        {
            if ((_events.Processed & 4095) == 0)
                _options.Cancellation.ThrowIfCancellationRequested();
            if (_events.Processed > _options.MaxEvents)
                throw new InvalidOperationException($"The simulation passed {_options.MaxEvents} events without finishing.");
            switch (e.Kind)
            {
                case SimEventKind.Arrival:
                    Arrive(_requests[e.Target], now);
                    break;
                case SimEventKind.StepDone:
                    if (e.Target < 0)
                        FinishClusterStep(now);
                    else
                        FinishStep(e.Target, now);
                    break;
                case SimEventKind.ClusterStep:
                    _clusterStepScheduled = false;
                    StartClusterStep(now);
                    break;
            }
        }
        foreach (SimRequest r in _requests)
        {
            if (r.State is not (SimRequestState.Finished or SimRequestState.Rejected))
                throw new InvalidOperationException($"Request {r.Index} ended the simulation {r.State}: the scheduler stalled.");
        }
        if (_done % _options.ProgressEvery != 0 || _done == 0)
            _options.Progress?.Invoke(_done, _requests.Length, _events.Now); // the last report, unless Done just made it
        Sample(_events.Now, force: true);
        return new SimulationResult
        {
            Policy = _policy.Name,
            Layout = _layout,
            Instances = n,
            Requests = [.. _requests.Select(Outcome)],
            Utilisation = _samples.Samples,
            MakespanSeconds = _lastCompletion,
            Steps = _stepCount,
            Events = _events.Processed,
            PagesMigrated = _pagesMigrated,
            Preemptions = _preemptions,
            BusySeconds = _busySeconds,
            Dispatch = _perInstance ? _options.Dispatch : DispatchMode.Global,
        };
    }

    /// <summary>Pages for <paramref name="tokens"/> tokens, in long arithmetic (a trace's prompt plus output may pass
    /// int.MaxValue tokens, which must be rejected, not wrap around).</summary>
    private long LongPagesFor(long tokens) => (tokens + _layout.PageTokens - 1) / _layout.PageTokens;

    private bool AnythingRunning()
    {
        foreach (SimulatedBatcher b in _instances)
        {
            if (b.Running.Count > 0)
                return true;
        }
        return false;
    }

    private void Wake(int instance, double now)
    {
        if (_options.SharedHost)
        {
            // One cluster step at a time; started by an event after whatever else happens at this instant.
            if (!_clusterBusy && !_clusterStepScheduled)
            {
                _clusterStepScheduled = true;
                _events.Schedule(now, new SimEvent(SimEventKind.ClusterStep, -1));
            }
            return;
        }
        if (!_instances[instance].Busy)
            StartStep(instance, now);
    }

    /// <summary>
    /// Shared host (<see cref="SimulationOptions.SharedHost"/>): one step for the whole cluster with one token budget,
    /// planned as the engine's scheduler plans it (every instance's decodes, then prefill chunks in cluster-wide
    /// admission order), priced per instance and charged as the sum of the instances' times, since they share the
    /// host's cores and memory bandwidth.
    /// </summary>
    private void StartClusterStep(double now)
    {
        if (_clusterBusy)
            return;
        int budget = _options.MaxBatchTokens;
        foreach (SimulatedBatcher b in _instances)
            b.Chunks.Clear();
        foreach (SimulatedBatcher b in _instances)
            b.PlanDecodes(_ops, now, ref budget);
        var prefills = new List<SimRequest>();
        foreach (SimulatedBatcher b in _instances)
            prefills.AddRange(b.Running.Where(r => !r.Prefilled));
        prefills.Sort((x, y) => x.AdmissionOrder.CompareTo(y.AdmissionOrder));
        foreach (SimRequest r in prefills)
        {
            if (budget <= 0)
                break;
            _instances[r.Home].PlanPrefill(r, ref budget);
        }
        double seconds = 0;
        bool any = false;
        for (int i = 0; i < _instances.Length; i++)
        {
            SimulatedBatcher b = _instances[i];
            StepWork work = b.Work;
            work.Clear();
            if (b.Chunks.Count > 0)
                FillWork(i, b, work, chargeServedPages: false);
            if (_pendingMigrationBytes[i] > 0)
            {
                work.MigrationBytes = _pendingMigrationBytes[i];
                work.MigrationLink = _pendingMigrationLink[i];
                _pendingMigrationBytes[i] = 0;
            }
            b.LastBatchTokens = (int)Math.Min(int.MaxValue, work.Tokens);
            _policy.ReportBatch(_space, i, b.LastBatchTokens);
            if (b.Chunks.Count == 0)
                continue; // nothing homed here runs this step; attention over pages it lends is charged to the debtors
            any = true;
            seconds += _cost.Price(work, i).SharedHostSeconds;
        }
        if (!any)
            return;
        if (!(seconds > 0))
            throw new InvalidOperationException($"The cluster priced a non-empty step at {seconds} s.");
        _clusterBusy = true;
        foreach (SimulatedBatcher b in _instances)
            b.Busy = true;
        _busySeconds += seconds;
        _stepCount++;
        if (_options.StepObserver is { } observe)
        {
            int decode = 0, prefill = 0;
            foreach (SimulatedBatcher b in _instances)
            {
                foreach (SimulatedBatcher.Chunk c in b.Chunks)
                {
                    if (c.Decode)
                        decode += c.Count;
                    else
                        prefill += c.Count;
                }
            }
            observe(prefill, decode, seconds);
        }
        _events.Schedule(now + seconds, new SimEvent(SimEventKind.StepDone, -1));
    }

    private void FinishClusterStep(double now)
    {
        _clusterBusy = false;
        for (int i = 0; i < _instances.Length; i++)
            CompleteChunks(_instances[i], now);
        Sample(now, force: false);
        if (_policy.Plans && _stepCount >= _nextPlanStep)
        {
            _nextPlanStep = _stepCount + _options.PlanEverySteps;
            Plan();
        }
        Dispatch(now);
        Wake(0, now);
    }

    private void StartStep(int i, double now)
    {
        SimulatedBatcher b = _instances[i];
        if (b.Busy)
            return; // one step at a time: a dispatch during FinishStep may already have started the next one
        b.Plan(_ops, now);
        if (b.Chunks.Count == 0)
            return;
        StepWork work = b.Work;
        work.Clear();
        FillWork(i, b, work);
        if (_pendingMigrationBytes[i] > 0)
        {
            work.MigrationBytes = _pendingMigrationBytes[i];
            work.MigrationLink = _pendingMigrationLink[i];
            _pendingMigrationBytes[i] = 0;
        }
        double seconds = _cost.Price(work, i).Total;
        if (!(seconds > 0))
            throw new InvalidOperationException($"Instance {i} priced a non-empty step at {seconds} s.");
        b.Busy = true;
        b.LastBatchTokens = (int)Math.Min(int.MaxValue, work.Tokens);
        _policy.ReportBatch(_space, i, b.LastBatchTokens);
        _busySeconds += seconds;
        _stepCount++;
        _events.Schedule(now + seconds, new SimEvent(SimEventKind.StepDone, i));
    }

    /// <summary>FLOPs and bytes of the planned chunks, split by where each request's pages lie.</summary>
    /// <param name="chargeServedPages">Whether this instance also pays for reading the pages it lends (separate
    /// devices: the creditor does that work in its own steps). On a shared host the debtor's remote parts, already
    /// priced where the pages are, are the same work on the same cores, so they are not charged twice.</param>
    private void FillWork(int i, SimulatedBatcher b, StepWork work, bool chargeServedPages = true)
    {
        ModelShape m = _layout.Model;
        double kvPerToken = m.KvBytesPerToken(_layout.Device.KvBytesPerElement);
        foreach (SimulatedBatcher.Chunk c in b.Chunks)
        {
            SimRequest r = c.Request;
            work.Tokens += c.Count;
            work.Sequences++;
            if (c.Logits)
                work.LogitRows++;
            double flops = m.AttentionFlops(c.Start, c.Count);
            double bytes = (c.Start + c.Count) * kvPerToken;
            // A decode sees every page; a prefill chunk only the pages up to its last position.
            int total = r.Table.Count;
            int[] pagesOn = r.PagesOn;
            if (!c.Decode)
            {
                total = (int)Math.Min(total, LongPagesFor(c.Start + c.Count));
                pagesOn = r.AdvancePrefix(total, _space.InstanceOf);
            }
            int local = pagesOn[i];
            if (local == total)
            {
                work.LocalAttentionFlops += flops;
                work.LocalAttentionBytes += bytes;
                continue;
            }
            for (int j = 0; j < pagesOn.Length; j++)
            {
                int on = pagesOn[j];
                if (on == 0)
                    continue;
                double f = (double)on / total;
                if (j == i)
                {
                    work.LocalAttentionFlops += flops * f;
                    work.LocalAttentionBytes += bytes * f;
                }
                else
                {
                    work.RemoteFlops[j] += flops * f;
                    work.RemoteBytes[j] += bytes * f;
                    work.RemoteQueryTokens[j] += c.Count;
                }
            }
        }
        // Creditor work: the pages this instance holds for requests homed elsewhere are read once per step.
        if (chargeServedPages && _foreignPages[i] > 0)
        {
            double tokens = (double)_foreignPages[i] * _layout.PageTokens;
            work.ServedAttentionBytes = tokens * kvPerToken;
            work.LocalAttentionBytes += work.ServedAttentionBytes;
            work.LocalAttentionFlops += 4.0 * m.Layers * m.QHeads * m.HeadDim * tokens;
        }
    }

    private void FinishStep(int i, double now)
    {
        SimulatedBatcher b = _instances[i];
        CompleteChunks(b, now);
        Sample(now, force: false);
        if (_policy.Plans && _stepCount >= _nextPlanStep)
        {
            _nextPlanStep = _stepCount + (long)_options.PlanEverySteps * _instances.Length;
            Plan();
        }
        Dispatch(now);
        Wake(i, now);
    }

    /// <summary>Books the tokens of an instance's finished step: prefill progress, first tokens, decodes, completions.</summary>
    private void CompleteChunks(SimulatedBatcher b, double now)
    {
        b.Busy = false;
        foreach (SimulatedBatcher.Chunk c in b.Chunks)
        {
            SimRequest r = c.Request;
            if (r.State != SimRequestState.Running)
                continue;
            r.Computed += c.Count;
            if (c.Decode)
            {
                r.Generated++;
            }
            else if (r.Pending == 0)
            {
                r.Prefilled = true;
                r.Generated++;
                if (double.IsNaN(r.FirstTokenSeconds))
                    r.FirstTokenSeconds = now;
            }
            if (r.Generated >= r.Workload.OutputTokens)
                Finish(r, now);
        }
        b.Chunks.Clear();
    }

    private void Finish(SimRequest r, double now)
    {
        _instances[r.Home].Running.Remove(r);
        ReleasePages(r);
        r.State = SimRequestState.Finished;
        r.FinishSeconds = now;
        Settle(r);
        Done(now);
    }

    private void Reject(SimRequest r, double now, string reason)
    {
        r.State = SimRequestState.Rejected;
        r.RejectReason = reason;
        Settle(r);
        Done(now);
    }

    /// <summary>The balancer forgets a request that left the system.</summary>
    private void Settle(SimRequest r)
    {
        if (r.Assigned >= 0)
            _outstanding[r.Assigned] -= r.Workload.PromptTokens;
    }

    private void Done(double now)
    {
        _done++;
        _lastCompletion = Math.Max(_lastCompletion, now);
        if (_options.Progress is { } progress && _done % _options.ProgressEvery == 0)
            progress(_done, _requests.Length, now);
    }

    // --- page operations the batcher calls -------------------------------------------------------------------

    private bool TryGrowDecode(SimRequest r, int pages)
    {
        int before = r.Table.Count;
        if (!_space.TryGrow(r.Id, r.Home, r.Table, pages))
            return false;
        CountPages(r, before);
        return true;
    }

    private void Preempt(SimRequest victim)
    {
        _instances[victim.Home].Running.Remove(victim);
        ReleasePages(victim);
        victim.Computed = 0;
        victim.Prefilled = false;
        victim.Home = -1;
        victim.State = SimRequestState.Queued;
        victim.Preemptions++;
        _preemptions++;
        Enqueue(victim, front: true);
    }

    private void RejectRunning(SimRequest r, double now)
    {
        _instances[r.Home].Running.Remove(r);
        int pages = r.Table.Count;
        ReleasePages(r);
        Reject(r, now, $"needs more than the {pages} KV pages it could get with nothing else running under policy {_policy.Name}");
    }

    private bool AnythingRunningBesides(int instance)
    {
        for (int i = 0; i < _instances.Length; i++)
        {
            if (i != instance && _instances[i].Running.Count > 0)
                return true;
        }
        return false;
    }

    private void CountPages(SimRequest r, int from)
    {
        for (int k = from; k < r.Table.Count; k++)
        {
            int j = _space.InstanceOf(r.Table[k]);
            r.PagesOn[j]++;
            if (j != r.Home)
                _foreignPages[j]++;
        }
    }

    private void ReleasePages(SimRequest r)
    {
        _spaceVersion++;
        r.ResetPrefix();
        for (int j = 0; j < r.PagesOn.Length; j++)
        {
            if (j != r.Home)
                _foreignPages[j] -= r.PagesOn[j];
            r.PagesOn[j] = 0;
        }
        _space.Release(r.Id, r.Table);
    }

    // --- gManager plans -------------------------------------------------------------------------------------

    /// <summary>Asks the gManager for its plan (with the waiting demand) and carries the moves out.</summary>
    private void Plan()
    {
        int waiting = 0;
        long pages = 0;
        foreach (LinkedList<SimRequest> queue in _queues)
        {
            foreach (SimRequest q in queue)
            {
                if (waiting == 64)
                    break;
                waiting++;
                pages += LongPagesFor(q.Tokens + 1);
            }
        }
        var demand = waiting == 0 ? Demand.None : new Demand(waiting, (int)Math.Max(1, pages / waiting));
        foreach (PageMove move in _policy.PlanMoves(_space, demand))
        {
            SimRequest? r = move.RequestId >= 1 && move.RequestId <= _requests.Length ? _requests[move.RequestId - 1] : null;
            if (r is null || r.State != SimRequestState.Running)
                continue;
            int moved = _policy.TryMove(_space, move);
            if (moved <= 0)
                continue;
            RecountPages(r);
            _spaceVersion++;
            _pagesMigrated += moved;
            double bytes = moved * _layout.PageBytes;
            Link link = _layout.Between(move.From, move.To);
            AddMigration(move.From, bytes, link);
            AddMigration(move.To, bytes, link);
        }
    }

    private void AddMigration(int instance, double bytes, Link link)
    {
        _pendingMigrationBytes[instance] += bytes;
        _pendingMigrationLink[instance] = _pendingMigrationLink[instance].Bandwidth == 0 || link.Bandwidth < _pendingMigrationLink[instance].Bandwidth
            ? link : _pendingMigrationLink[instance];
    }

    private void RecountPages(SimRequest r)
    {
        r.ResetPrefix();
        for (int j = 0; j < r.PagesOn.Length; j++)
        {
            if (j != r.Home)
                _foreignPages[j] -= r.PagesOn[j];
            r.PagesOn[j] = 0;
        }
        CountPages(r, 0);
    }

    // --- metrics ---------------------------------------------------------------------------------------------

    private void Sample(double now, bool force)
    {
        int running = 0;
        foreach (SimulatedBatcher b in _instances)
            running += b.Running.Count;
        double used = _space.TotalPages == 0 ? 0 : (double)_space.UsedPages / _space.TotalPages;
        _samples.Add(now, used, running, _queued, force);
    }

    private static RequestOutcome Outcome(SimRequest r)
    {
        bool served = r.State == SimRequestState.Finished;
        double ttft = served ? r.FirstTokenSeconds - r.Workload.ArrivalSeconds : double.NaN;
        double tpot = served && r.Workload.OutputTokens > 1
            ? (r.FinishSeconds - r.FirstTokenSeconds) / (r.Workload.OutputTokens - 1) : double.NaN;
        double completion = served ? r.FinishSeconds - r.Workload.ArrivalSeconds : double.NaN;
        return new RequestOutcome(r.Index, r.Workload, served, ttft, tpot, completion, r.Preemptions, r.RejectReason, r.Home);
    }
}
