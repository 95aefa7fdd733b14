using Infinite.Models;
using Infinite.Native;

namespace Infinite.Runtime.Mpi;

/// <summary>
/// Starts this process's part of <c>mpirun -np N infinite ... --mpi</c>: one instance per rank, each with the model
/// and its own KV pool. Rank 0 gets a <see cref="DistributedExecutor"/> over its own instance and one
/// <see cref="RemoteInstance"/> per other rank (after checking that every rank loaded the same setup); every other
/// rank runs <see cref="MpiWorker"/> until rank 0 shuts it down.
/// </summary>
public sealed class MpiCluster : IDisposable
{
    private readonly Device _device;
    private readonly NativeModel _model;
    private readonly LocalInstance _instance;

    private readonly int _selectionSlots;

    private MpiCluster(Device device, NativeModel model, LocalInstance instance, int selectionSlots)
    {
        _selectionSlots = selectionSlots;
        _device = device;
        _model = model;
        _instance = instance;
    }

    public int Rank => _instance.Rank;
    public int Size => _instance.Communicator.Size;
    public Communicator Communicator => _instance.Communicator;

    /// <summary>Joins the MPI job (MPI_COMM_WORLD) and builds this rank's instance.</summary>
    /// <exception cref="InfiniteException">MPI cannot be loaded (the message names the library and why), or the
    /// model or pool was rejected.</exception>
    public static MpiCluster Join(IWeightSource weights, NativeExecutorOptions options, TimeSpan communicationTimeout)
    {
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(options);
        LlamaConfig config = weights.Config ?? throw new ArgumentException("the weight source has no config", nameof(weights));
        Communicator comm = Communicator.CreateMpi();
        Device? device = null;
        NativeModel? model = null;
        PagePool? pool = null;
        try
        {
            comm.Timeout = communicationTimeout;
            device = Device.Cpu();
            model = NativeModel.Create(device, NativeExecutor.ToNative(config), NativeExecutor.Tensors(weights),
                NativeExecutor.Progress(options.Progress));
            pool = NativeExecutor.CreatePool(device, config, options);
            return new MpiCluster(device, model, new LocalInstance(model, pool, comm), options.SelectionSlots);
        }
        catch
        {
            pool?.Dispose();
            comm.Dispose();
            model?.Dispose();
            device?.Dispose();
            throw;
        }
    }

    private WorkerShape Shape()
    {
        NativeModel m = _model;
        PagePoolConfig pool = _instance.Pool.Config;
        NativeModelConfig c = m.Config;
        return new WorkerShape(c.VocabSize, c.Dim, c.Layers, c.QHeads, c.KvHeads, c.HeadDim, c.FfnDim, pool.PageSize, pool.Pages);
    }

    /// <summary>Rank 0: the executor over every rank (owning the remote runners; the local instance stays this
    /// object's). Waits for each worker's handshake.</summary>
    public DistributedExecutor CreateExecutor(LlamaConfig config, TimeSpan replyTimeout)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (Rank != 0)
            throw new InvalidOperationException($"rank {Rank} is a worker; only rank 0 drives the cluster");
        WorkerShape shape = Shape();
        var failure = new StepFailure();
        var remotes = new List<RemoteInstance>();
        try
        {
            for (int r = 1; r < Size; r++)
            {
                var remote = new RemoteInstance(Communicator, r, replyTimeout, failure);
                remotes.Add(remote);
                remote.Handshake(shape);
            }
        }
        catch
        {
            foreach (RemoteInstance remote in remotes)
                remote.Dispose();
            throw;
        }
        return new DistributedExecutor(config, shape.PageSize, shape.PagesPerInstance, [new BorrowedRunner(_instance, failure), .. remotes],
            selectionSlots: _selectionSlots);
    }

    /// <summary>Ranks 1 ..: serves rank 0's commands until it shuts this rank down; returns the steps run.</summary>
    public long RunWorker(CancellationToken cancel = default) => MpiWorker.Run(_instance, Shape(), cancel);

    public void Dispose()
    {
        _instance.Dispose();
        _model.Dispose();
        _device.Dispose();
    }

    /// <summary>Rank 0's own instance inside the executor, which must not dispose it (this cluster does). A failed
    /// step is flagged so the remote runners stop waiting for replies of that step.</summary>
    private sealed class BorrowedRunner(LocalInstance inner, StepFailure failure) : IInstanceRunner
    {
        public int Rank => inner.Rank;
        public bool IsFailed => inner.IsFailed;

        public void Step(InstancePlan plan, Span<float> logits)
        {
            try
            {
                inner.Step(plan, logits);
            }
            catch
            {
                failure.Fail(plan.StepId);
                throw;
            }
        }

        public void SendPages(int peer, ReadOnlySpan<int> pages) => inner.SendPages(peer, pages);
        public void ReceivePages(int peer, ReadOnlySpan<int> pages) => inner.ReceivePages(peer, pages);
        public void Dispose() { }
    }
}
