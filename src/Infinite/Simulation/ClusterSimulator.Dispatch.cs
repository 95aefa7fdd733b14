using Infinite.Cluster;

namespace Infinite.Simulation;

/// <summary>How arriving requests reach an instance and are admitted (<see cref="SimulationOptions.Dispatch"/>): the
/// load balancer and per-instance queues, or one global queue with late binding.</summary>
public sealed partial class ClusterSimulator
{
    private void Arrive(SimRequest r, double now)
    {
        long pages = LongPagesFor(r.Workload.TotalTokens);
        if (pages > _space.MaxPagesPerRequest)
        {
            Reject(r, now, $"needs more KV pages than one request may hold under policy {_policy.Name} ({_space.MaxPagesPerRequest} pages = {(long)_space.MaxPagesPerRequest * _layout.PageTokens} tokens)");
            return;
        }
        r.State = SimRequestState.Queued;
        if (_perInstance)
        {
            r.Assigned = Balance();
            _outstanding[r.Assigned] += r.Workload.PromptTokens;
        }
        Enqueue(r, front: false);
        Dispatch(now);
    }

    /// <summary>The load balancer's choice on arrival: fewest outstanding prompt tokens (ties to the lower index), or
    /// the next instance in turn.</summary>
    private int Balance()
    {
        if (_options.Dispatch == DispatchMode.ArrivalRoundRobin)
            return _roundRobin++ % _instances.Length;
        int best = 0;
        for (int i = 1; i < _outstanding.Length; i++)
        {
            if (_outstanding[i] < _outstanding[best])
                best = i;
        }
        return best;
    }

    private LinkedList<SimRequest> QueueOf(SimRequest r) => _perInstance ? _queues[r.Assigned] : _queues[0];

    private void Enqueue(SimRequest r, bool front)
    {
        LinkedList<SimRequest> queue = QueueOf(r);
        if (front)
            queue.AddFirst(r);
        else
            queue.AddLast(r);
        _queued++;
        if (_perInstance)
            _policy.ReportWaiting(_space, r.Assigned, queue.Count);
    }

    private void Dequeue(LinkedList<SimRequest> queue)
    {
        SimRequest r = queue.First!.Value;
        queue.RemoveFirst();
        _queued--;
        if (_perInstance)
            _policy.ReportWaiting(_space, r.Assigned, queue.Count);
    }

    /// <summary>Reports every instance's queue as its waiting demand, or none (<paramref name="blocked"/>: nothing runs
    /// and the heads cannot be admitted, so no queue holds or is about to hold memory that a cap would protect, and two
    /// requests each waiting for the other's instance to go idle would otherwise wait forever).</summary>
    private void ReportAllWaiting(bool blocked)
    {
        for (int i = 0; i < _queues.Length; i++)
            _policy.ReportWaiting(_space, i, blocked ? 0 : _queues[i].Count);
    }

    private void Dispatch(double now)
    {
        if (_perInstance)
            DispatchPerInstance(now);
        else
            DispatchGlobal(now);
    }

    /// <summary>Places queued requests, first come first served: the head waits (and blocks the rest) until the page
    /// space can take all the pages of its prompt; a head that cannot be placed on an idle cluster is rejected.</summary>
    private void DispatchGlobal(double now)
    {
        LinkedList<SimRequest> queue = _queues[0];
        while (queue.First is { } node)
        {
            SimRequest r = node.Value;
            int need = (int)LongPagesFor(r.Tokens + 1); // <= the total's pages, checked on arrival
            int home = _space.PlaceRequest(r.Id, need);
            bool placed = false;
            if (home >= 0 && _instances[home].Running.Count < _options.MaxRunningPerInstance * _scale)
            {
                r.Home = home;
                if (_space.TryGrow(r.Id, home, r.Table, need))
                    placed = true;
                else
                    _space.Release(r.Id, r.Table); // forget the placement; nothing was taken
            }
            else if (home >= 0)
            {
                _space.Release(r.Id, r.Table);
            }
            if (!placed)
            {
                r.Home = -1;
                if (!AnythingRunning())
                {
                    Dequeue(queue);
                    Reject(r, now, $"cannot get its {need} KV pages even on an idle cluster under policy {_policy.Name}");
                    continue;
                }
                return;
            }
            Dequeue(queue);
            Start(r, home, now);
        }
    }

    /// <summary>
    /// Per-instance queues: repeatedly takes a head that may have become admissible and admits it at its own instance
    /// when the page space gives that home the prompt's pages (local ones, or borrowed ones under a borrowing policy);
    /// a head that cannot be admitted blocks only its own queue. Heads that fit their home's free pages go first, then
    /// the others, oldest (by arrival) first within each: an instance serves its own queue before its pages are lent to
    /// another's. A head is rejected when nothing that could free pages for it runs: its instance under a policy that
    /// does not borrow, any instance under one that does.
    /// </summary>
    private void DispatchPerInstance(double now)
    {
        var cluster = _space as ClusterPageSpace;
        while (true)
        {
            int pick = -1;
            bool pickLocal = false;
            for (int i = 0; i < _queues.Length; i++)
            {
                if (_queues[i].First is not { } head)
                    continue;
                if (_blockedVersion[i] == _spaceVersion && _blockedHead[i] == head.Value.Index)
                    continue;
                bool local = cluster is null || cluster.RManagers[i].Free >= LongPagesFor(head.Value.Tokens + 1);
                if (pick < 0 || (local && !pickLocal)
                    || (local == pickLocal && head.Value.Index < _queues[pick].First!.Value.Index))
                {
                    pick = i;
                    pickLocal = local;
                }
            }
            if (pick < 0)
                return;
            SimRequest r = _queues[pick].First!.Value;
            int need = (int)LongPagesFor(r.Tokens + 1);
            if (TryAdmit(r, pick, need))
            {
                Dequeue(_queues[pick]);
                Start(r, pick, now);
                continue;
            }
            bool borrows = cluster is { Policy.AllowsBorrowing: true };
            if (borrows && !AnythingRunning())
            {
                // The cluster is stalled on blocked heads: their queues are no demand the caps protect.
                ReportAllWaiting(blocked: true);
                bool admitted = TryAdmit(r, pick, need);
                ReportAllWaiting(blocked: false);
                if (admitted)
                {
                    Dequeue(_queues[pick]);
                    Start(r, pick, now);
                    continue;
                }
            }
            if (borrows ? !AnythingRunning() : _instances[pick].Running.Count == 0)
            {
                Dequeue(_queues[pick]);
                _spaceVersion++; // its instance's demand fell: it may lend more to the other heads
                Reject(r, now, $"cannot get its {need} KV pages on instance {pick} with nothing running that could free them, under policy {_policy.Name}");
                continue;
            }
            _blockedVersion[pick] = _spaceVersion;
            _blockedHead[pick] = r.Index;
        }
    }

    /// <summary>Gives <paramref name="r"/> its prompt's pages with <paramref name="home"/> as its home, or takes
    /// nothing and returns false.</summary>
    private bool TryAdmit(SimRequest r, int home, int need)
    {
        if (_instances[home].Running.Count >= _options.MaxRunningPerInstance * _scale || _space.AvailableTo(r.Id, home) < need)
            return false;
        r.Home = home;
        if (_space.TryGrow(r.Id, home, r.Table, need))
            return true;
        _space.Release(r.Id, r.Table);
        r.Home = -1;
        return false;
    }

    private void Start(SimRequest r, int home, double now)
    {
        CountPages(r, 0);
        r.State = SimRequestState.Running;
        r.AdmissionOrder = ++_admissions;
        _instances[home].Running.Add(r);
        Wake(home, now);
    }
}
