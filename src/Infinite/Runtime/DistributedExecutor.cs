using System.Runtime.ExceptionServices;
using Infinite.Engine;
using Infinite.Models;
using Infinite.Native;

namespace Infinite.Runtime;

/// <summary>
/// Runs steps over a KV cache spread across several instances (DistAttention): page ids are global,
/// <c>instance * PagesPerInstance + local</c>, and each sequence runs its non-attention layers on its home
/// (<see cref="StepPlan.Homes"/>, instance 0 when null) while the instances holding its other pages attend over them
/// and send back partial results. Each step is split into one <see cref="InstancePlan"/> per instance
/// (<see cref="DistributedPlanner"/>) and all instances step at once, each on its own dedicated thread, with one
/// step id. Instances are pluggable <see cref="IInstanceRunner"/>s: in-process <see cref="LocalInstance"/>s sharing
/// one model (built by the first constructor), or any mix with runners that ship plans to other processes.
/// A gone instance surfaces as <see cref="InstanceFailedException"/> naming it. Not thread-safe: one engine thread
/// drives it.
/// </summary>
public sealed class DistributedExecutor : IModelExecutor, IPageMover
{
    private readonly IInstanceRunner[] _runners;
    private readonly bool _ownsRunners;
    private readonly InstanceThreads _threads;
    private readonly float[][] _logits;
    private readonly NativeModel? _model;
    private readonly CommGroup? _group;
    private readonly Device? _ownedDevice;
    private readonly IDisposable? _ownedWeights;
    private long _stepId;
    private bool _disposed;

    /// <summary>Builds <see cref="DistributedExecutorOptions.Instances"/> in-process instances on
    /// <paramref name="device"/> (the CPU when null, then owned): one model loaded once and shared, one pool and one
    /// in-process endpoint per instance.</summary>
    /// <exception cref="InfiniteException">The native core rejected a tensor or a pool (the message names it).</exception>
    public DistributedExecutor(IWeightSource weights, DistributedExecutorOptions? options = null, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(weights);
        options ??= new DistributedExecutorOptions();
        if (options.Instances is < 1 or > 1024)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.Instances, "Instances must be 1 to 1024");
        }
        ArgumentNullException.ThrowIfNull(options.Instance, nameof(options));
        NativeExecutorOptions pool = options.Instance;
        if (pool.PageCount is not null && pool.KvMemoryBytes is not null)
        {
            throw new ArgumentException("set Instance.PageCount or Instance.KvMemoryBytes, not both", nameof(options));
        }
        if (options.CommunicationTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.CommunicationTimeout, "CommunicationTimeout must be positive");
        }
        Config = weights.Config ?? throw new ArgumentException("the weight source has no config", nameof(weights));
        _ownedDevice = device is null ? Device.Cpu() : null;
        Device = device ?? _ownedDevice!;
        var runners = new List<IInstanceRunner>();
        try
        {
            _model = NativeModel.Create(Device, NativeExecutor.ToNative(Config), NativeExecutor.Tensors(weights),
                NativeExecutor.Progress(pool.Progress));
            _group = CommGroup.Create(options.Instances);
            for (int i = 0; i < options.Instances; i++)
            {
                PagePool instancePool = NativeExecutor.CreatePool(Device, Config, pool);  // no selection store: selections are global per step
                Communicator comm;
                try
                {
                    comm = Communicator.CreateInProcess(_group, i);
                    comm.Timeout = options.CommunicationTimeout;
                }
                catch
                {
                    instancePool.Dispose();
                    throw;
                }
                runners.Add(new LocalInstance(_model, instancePool, comm));
            }
        }
        catch
        {
            foreach (IInstanceRunner runner in runners)
            {
                runner.Dispose();
            }
            _group?.Dispose();
            _model?.Dispose();
            _ownedDevice?.Dispose();
            throw;
        }
        var first = (LocalInstance)runners[0];
        PageSize = first.Pool.Config.PageSize;
        PagesPerInstance = first.Pool.Config.Pages;
        _ownedWeights = pool.OwnsWeights ? weights as IDisposable : null;
        SelectionSlots = pool.SelectionSlots;
        _runners = [.. runners];
        _ownsRunners = true;
        _threads = new InstanceThreads(_runners.Length, "Infinite instance");
        _logits = new float[_runners.Length][];
    }

    /// <summary>Drives the given instances (runner i must have rank i), e.g. rank 0's own instance and one runner per
    /// other MPI rank. Every instance's pool has <paramref name="pagesPerInstance"/> pages of
    /// <paramref name="pageSize"/> tokens.</summary>
    /// <param name="selectionSlots">Running requests a sparse engine may hold (0: dense only).</param>
    public DistributedExecutor(LlamaConfig config, int pageSize, int pagesPerInstance, IReadOnlyList<IInstanceRunner> runners,
        bool ownsRunners = true, int selectionSlots = 0)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentOutOfRangeException.ThrowIfNegative(selectionSlots);
        SelectionSlots = selectionSlots;
        ArgumentNullException.ThrowIfNull(runners);
        ArgumentOutOfRangeException.ThrowIfLessThan(pageSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(pagesPerInstance, 1);
        if (runners.Count is < 1 or > 1024)
        {
            throw new ArgumentOutOfRangeException(nameof(runners), runners.Count, "1 to 1024 instances");
        }
        for (int i = 0; i < runners.Count; i++)
        {
            if (runners[i] is null || runners[i].Rank != i)
            {
                throw new ArgumentException($"runners[{i}] must be the instance of rank {i} (it is {(runners[i] is null ? "null" : $"rank {runners[i].Rank}")})", nameof(runners));
            }
        }
        if ((long)runners.Count * pagesPerInstance > int.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(pagesPerInstance), pagesPerInstance, $"{runners.Count} instances of {pagesPerInstance} pages overflow the global page ids");
        }
        Config = config;
        PageSize = pageSize;
        PagesPerInstance = pagesPerInstance;
        _runners = [.. runners];
        _ownsRunners = ownsRunners;
        _threads = new InstanceThreads(_runners.Length, "Infinite instance");
        _logits = new float[_runners.Length][];
        Device = (runners[0] as LocalInstance)?.Pool.Device;
    }

    public LlamaConfig Config { get; }

    public int PageSize { get; }

    public int Instances => _runners.Length;

    public int PagesPerInstance { get; }

    public int PageCount => Instances * PagesPerInstance;

    /// <summary>Running requests a sparse engine may hold (Instance.SelectionSlots of the in-process constructor, the
    /// selectionSlots argument of the runners' one). No selection is stored: a distributed sparse
    /// step selects every step (a global top-k at each home), so the engine must reselect at every decode
    /// (<see cref="SparseOptions.ReuseInterval"/> = 1).</summary>
    public int SelectionSlots { get; }

    /// <summary>The device of the in-process instances; null when instance 0 is not in this process.</summary>
    public Device? Device { get; }

    /// <summary>The instances, index = rank.</summary>
    public IReadOnlyList<IInstanceRunner> Runners => _runners;

    /// <summary>The id the next step will carry (every instance of a step gets the same, increasing ids).</summary>
    public long NextStepId => _stepId + 1;

    public void Step(StepPlan plan, Span<float> logits)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        StepPlanShape.Check(plan, logits.Length, Config.VocabSize);
        SparseStep? sparse = plan.Sparse;
        if (sparse is not null)
        {
            CheckSparse(plan, sparse);
        }
        DistributedStep step = DistributedPlanner.Split(plan, Instances, PagesPerInstance, PageSize, ++_stepId);
        ThrowIfAnyFailed(step.Busy, "before the step");
        int vocab = Config.VocabSize;
        var work = new Action?[Instances];
        foreach (int i in step.Busy)
        {
            InstancePlan instancePlan = step.Plans[i];
            int length = instancePlan.LogitTokens.Length * vocab;
            if (_logits[i] is null || _logits[i].Length < length)
            {
                _logits[i] = new float[length];
            }
            float[] buffer = _logits[i];
            IInstanceRunner runner = _runners[i];
            work[i] = () => runner.Step(instancePlan, buffer.AsSpan(0, length));
        }
        ThrowFailures(_threads.Run(work), "step");
        for (int r = 0; r < step.LogitSources.Length; r++)
        {
            (int instance, int row) = step.LogitSources[r];
            _logits[instance].AsSpan(row * vocab, vocab).CopyTo(logits.Slice(r * vocab, vocab));
        }
    }

    // Sparse attention runs on in-process instances (the MPI plan codec does not carry it yet) and selects pages
    // every step: a decode that selects pages must be reselected (no stored selection to reuse).
    private void CheckSparse(StepPlan plan, SparseStep sparse)
    {
        if (sparse.BudgetTokens <= 0)
        {
            return;
        }
        for (int s = 0; s < plan.SequenceCount; s++)
        {
            bool selects = plan.QStarts[s + 1] - plan.QStarts[s] == 1 && plan.KvLengths[s] > sparse.BudgetTokens;
            if (selects && sparse.Reselect is { } reselect && !reselect[s])
            {
                throw new NotSupportedException(
                    $"reusable selection with several instances is not supported yet: sequence {s} reuses its page selection (set SparseOptions.ReuseInterval = 1)");
            }
        }
    }

    /// <summary>Moves pages between instances: per (source instance, destination instance) pair one
    /// <see cref="IInstanceRunner.SendPages"/> matched by one <see cref="IInstanceRunner.ReceivePages"/>, all pairs at
    /// once (each instance sends first, which never waits, then receives, so no order deadlocks).</summary>
    /// <exception cref="ArgumentException">A page id outside the cache, or a move within one instance.</exception>
    /// <exception cref="InstanceFailedException">An instance a move needs is gone.</exception>
    public void MovePages(IReadOnlyList<(int FromGlobal, int ToGlobal)> moves)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(moves);
        var pairs = new SortedDictionary<(int From, int To), (List<int> Sources, List<int> Destinations)>();
        for (int i = 0; i < moves.Count; i++)
        {
            (int from, int to) = moves[i];
            if ((uint)from >= (uint)PageCount || (uint)to >= (uint)PageCount)
            {
                throw new ArgumentException($"moves[{i}] = ({from} -> {to}) names a page outside 0 .. {PageCount - 1}", nameof(moves));
            }
            int source = from / PagesPerInstance, destination = to / PagesPerInstance;
            if (source == destination)
            {
                throw new ArgumentException($"moves[{i}] = ({from} -> {to}) stays on instance {source}; a move goes to another instance", nameof(moves));
            }
            if (!pairs.TryGetValue((source, destination), out var pair))
            {
                pairs[(source, destination)] = pair = ([], []);
            }
            pair.Sources.Add(from % PagesPerInstance);
            pair.Destinations.Add(to % PagesPerInstance);
        }
        if (pairs.Count == 0)
        {
            return;
        }
        ThrowIfAnyFailed(pairs.Keys.SelectMany(k => new[] { k.From, k.To }).Distinct(), "before the page move");
        var work = new Action?[Instances];
        for (int i = 0; i < Instances; i++)
        {
            var sends = pairs.Where(p => p.Key.From == i).Select(p => (Peer: p.Key.To, Pages: p.Value.Sources.ToArray())).ToList();
            var receives = pairs.Where(p => p.Key.To == i).Select(p => (Peer: p.Key.From, Pages: p.Value.Destinations.ToArray())).ToList();
            if (sends.Count == 0 && receives.Count == 0)
            {
                continue;
            }
            IInstanceRunner runner = _runners[i];
            work[i] = () => MoveOn(runner, sends, receives);
        }
        ThrowFailures(_threads.Run(work), "page move");
    }

    /// <summary>Simulates the death of an in-process instance: destroys its communicator endpoint, so its peers see
    /// it gone and every later step or move that needs it throws <see cref="InstanceFailedException"/>.</summary>
    public void FailInstance(int instance)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if ((uint)instance >= (uint)Instances)
        {
            throw new ArgumentOutOfRangeException(nameof(instance), instance, $"instances are 0 .. {Instances - 1}");
        }
        if (_runners[instance] is not LocalInstance local)
        {
            throw new NotSupportedException($"instance {instance} is not in this process ({_runners[instance].GetType().Name}); only a local instance can be failed on purpose");
        }
        local.Fail();
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        _threads.Dispose();
        if (_ownsRunners)
        {
            foreach (IInstanceRunner runner in _runners)
            {
                runner.Dispose();
            }
        }
        _group?.Dispose();
        _model?.Dispose();
        _ownedDevice?.Dispose();
        _ownedWeights?.Dispose();
    }

    // Sends never wait for the receiver, so sending everything first and then receiving cannot deadlock. Every
    // receive is attempted even after one fails, so no message is left queued to be mistaken for a later move's.
    private static void MoveOn(IInstanceRunner runner, List<(int Peer, int[] Pages)> sends, List<(int Peer, int[] Pages)> receives)
    {
        var errors = new List<Exception>();
        foreach ((int peer, int[] pages) in sends)
        {
            try
            {
                runner.SendPages(peer, pages);
            }
            catch (Exception e)
            {
                errors.Add(e);
            }
        }
        foreach ((int peer, int[] pages) in receives)
        {
            try
            {
                runner.ReceivePages(peer, pages);
            }
            catch (Exception e)
            {
                errors.Add(e);
            }
        }
        if (errors.Count == 1)
        {
            ExceptionDispatchInfo.Capture(errors[0]).Throw();
        }
        if (errors.Count > 1)
        {
            throw new AggregateException(errors);
        }
    }

    private void ThrowIfAnyFailed(IEnumerable<int> involved, string when)
    {
        int[] failed = involved.Where(i => _runners[i].IsFailed).Order().ToArray();
        if (failed.Length > 0)
        {
            throw new InstanceFailedException(failed, $"its communicator endpoint is gone ({when})");
        }
    }

    /// <summary>Turns the instances' exceptions into one. Which instance failed: those that know they are gone, and
    /// the peers others found gone; only when nobody is known gone, the peers others timed out on (minus instances
    /// that themselves reported waiting on someone: they were alive, the failure cascaded to them).</summary>
    private void ThrowFailures(Exception?[] errors, string what)
    {
        var all = errors.Where(e => e is not null).Select(e => e!).ToList();
        if (all.Count == 0)
        {
            return;
        }
        var flat = all.SelectMany(e => e is AggregateException a ? a.Flatten().InnerExceptions : [e]).ToList();
        var failed = new SortedSet<int>(Enumerable.Range(0, Instances).Where(i => _runners[i].IsFailed));
        foreach (Exception e in flat)
        {
            if (e is InstanceFailedException gone)
            {
                failed.UnionWith(gone.Instances);
            }
            else if (e is PeerFailedException { Peer: int peer } && (uint)peer < (uint)Instances)
            {
                failed.Add(peer);
            }
        }
        if (failed.Count == 0)
        {
            var waited = flat.OfType<CommunicationTimeoutException>().Where(t => t.Peer is int p && (uint)p < (uint)Instances)
                .Select(t => t.Peer!.Value).ToHashSet();
            var waiting = Enumerable.Range(0, Instances).Where(i => errors[i] is CommunicationTimeoutException or PeerFailedException).ToHashSet();
            failed.UnionWith(waited.Except(waiting));
            if (failed.Count == 0)
            {
                failed.UnionWith(waited);
            }
        }
        if (failed.Count > 0)
        {
            Exception cause = flat.FirstOrDefault(e => e is InstanceFailedException or PeerFailedException or CommunicationTimeoutException) ?? flat[0];
            string reason = cause is InstanceFailedException ife ? ife.Reason : cause.Message;
            throw new InstanceFailedException([.. failed], $"the {what} failed: {reason}", all.Count == 1 ? all[0] : new AggregateException(all));
        }
        // Not an instance failure (a bad plan, a native error): the most specific error, as it was thrown.
        Exception first = flat.FirstOrDefault(e => e is not InfiniteException { Status: InfiniteStatus.Timeout or InfiniteStatus.PeerFailed }) ?? flat[0];
        ExceptionDispatchInfo.Capture(first).Throw();
    }
}
