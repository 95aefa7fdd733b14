using Infinite.Engine;
using Infinite.Models;
using Infinite.Native;
using Infinite.Runtime;
using Infinite.Runtime.Mpi;

namespace Infinite.Tests.Runtime;

/// <summary>
/// The MPI mode's control protocol, run over in-process endpoints (the same native communicator interface as MPI):
/// rank 0 drives its own instance plus <see cref="RemoteInstance"/>s whose <see cref="MpiWorker"/> loops run on other
/// threads, and gets the same logits as the all-local executor; workers with another shape are refused by name; a
/// bad plan fails on the worker and reaches rank 0 as an exception while the worker keeps serving.
/// </summary>
public sealed class MpiWorkerTests : IDisposable
{
    private const int PageSize = 16;
    private const int Pages = 24;
    private static readonly LlamaConfig Config = TestWeights.TinyConfig();
    private readonly TestWeights _weights = TestWeights.Random(Config, seed: 43);

    public void Dispose() => _weights.Dispose();

    private static WorkerShape Shape(int pages = Pages) => new(Config.VocabSize, Config.Dim, Config.Layers,
        Config.QHeads, Config.KvHeads, Config.HeadDim, Config.FfnDim, PageSize, pages);

    /// <summary>Rank 0's executor over <paramref name="ranks"/> ranks of one in-process group, workers on threads.</summary>
    private sealed class Cluster : IDisposable
    {
        private readonly Device _device = Device.Cpu();
        private readonly NativeModel _model;
        private readonly CommGroup _group;
        private readonly List<LocalInstance> _instances = [];
        private readonly List<Task<long>> _workers = [];

        public Cluster(IWeightSource weights, int ranks, Func<int, WorkerShape> shapeOf)
        {
            _model = NativeModel.Create(_device, NativeExecutor.ToNative(Config), NativeExecutor.Tensors(weights), null);
            _group = CommGroup.Create(ranks);
            var options = new NativeExecutorOptions { KvType = DataType.F32, PageSize = PageSize, PageCount = Pages };
            for (int r = 0; r < ranks; r++)
            {
                var comm = Communicator.CreateInProcess(_group, r);
                comm.Timeout = TimeSpan.FromSeconds(10);
                _instances.Add(new LocalInstance(_model, NativeExecutor.CreatePool(_device, Config, options), comm));
            }
            for (int r = 1; r < ranks; r++)
            {
                LocalInstance worker = _instances[r];
                WorkerShape shape = shapeOf(r);
                _workers.Add(Task.Factory.StartNew(() => MpiWorker.Run(worker, shape), TaskCreationOptions.LongRunning));
            }
            Remotes = Enumerable.Range(1, ranks - 1)
                .Select(r => new RemoteInstance(_instances[0].Communicator, r, TimeSpan.FromSeconds(30))).ToList();
            Executor = new DistributedExecutor(Config, PageSize, Pages, [_instances[0], .. Remotes], ownsRunners: false);
        }

        public List<RemoteInstance> Remotes { get; }
        public DistributedExecutor Executor { get; }

        /// <summary>Shuts the workers down and returns how many steps each ran.</summary>
        public long[] Stop()
        {
            foreach (RemoteInstance remote in Remotes)
                remote.Dispose();
            Assert.True(Task.WaitAll([.. _workers], TimeSpan.FromSeconds(30)), "a worker loop did not stop after Shutdown");
            return [.. _workers.Select(w => w.Result)];
        }

        public void Dispose()
        {
            Executor.Dispose();
            foreach (RemoteInstance remote in Remotes)
                remote.Dispose();
            Task.WaitAll([.. _workers], TimeSpan.FromSeconds(30));
            foreach (LocalInstance instance in _instances)
                instance.Dispose();
            _group.Dispose();
            _model.Dispose();
            _device.Dispose();
        }
    }

    private static List<float[]> Run(IModelExecutor executor, int instances)
    {
        var layout = new DistributedLayout(instances, Pages, PageSize, seed: 9);
        DistributedLayout.Sequence a = layout.Add(0, e => e % instances);
        DistributedLayout.Sequence b = layout.Add(instances - 1, e => e < 2 ? 1 : 0);
        var logits = new List<float[]>
        {
            StepPlans.Run(executor, layout.Build((a, StepPlans.RandomTokens(40, Config.VocabSize, 1), false),
                (b, StepPlans.RandomTokens(35, Config.VocabSize, 2), false))),
        };
        int[] next = [3, 5];
        for (int step = 0; step < 4; step++)
        {
            float[] l = StepPlans.Run(executor, layout.Build((a, [next[0]], false), (b, [next[1]], false)));
            logits.Add(l);
            next = [StepPlans.ArgMax(l.AsSpan(0, Config.VocabSize)), StepPlans.ArgMax(l.AsSpan(Config.VocabSize, Config.VocabSize))];
        }
        return logits;
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void Remote_workers_give_the_logits_of_local_instances(int ranks)
    {
        List<float[]> expected;
        using (var local = new DistributedExecutor(_weights, new DistributedExecutorOptions
        {
            Instances = ranks,
            Instance = new NativeExecutorOptions { KvType = DataType.F32, PageSize = PageSize, PageCount = Pages },
        }))
        {
            expected = Run(local, ranks);
        }
        using var cluster = new Cluster(_weights, ranks, _ => Shape());
        foreach (RemoteInstance remote in cluster.Remotes)
            remote.Handshake(Shape());
        List<float[]> actual = Run(cluster.Executor, ranks);
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
            Assert.True(StepPlans.RelativeError(actual[i], expected[i]) < 1e-5, $"step {i}");
        long[] steps = cluster.Stop();
        Assert.All(steps, s => Assert.True(s > 0, "every worker ran steps"));
    }

    [Fact]
    public void A_worker_with_another_pool_is_refused_by_name()
    {
        using var cluster = new Cluster(_weights, 2, _ => Shape(pages: Pages + 1));
        var error = Assert.Throws<InvalidOperationException>(() => cluster.Remotes[0].Handshake(Shape()));
        Assert.Contains("PagesPerInstance", error.Message);
        Assert.Contains("rank 1", error.Message);
    }

    [Fact]
    public void A_bad_plan_fails_on_the_worker_and_the_worker_keeps_serving()
    {
        using var cluster = new Cluster(_weights, 2, _ => Shape());
        cluster.Remotes[0].Handshake(Shape());
        var bad = new InstancePlan { StepId = 1, TokenIds = [1], Positions = [0], QStarts = [0, 1], KvLengths = [1],
            PageStarts = [0, 1], PageIds = [Pages + 7], PagePositions = [0], LogitTokens = [0] };
        var error = Assert.Throws<WorkerFailedException>(() => cluster.Remotes[0].Step(bad, new float[Config.VocabSize]));
        Assert.Contains("rank 1", error.Message);
        Assert.Contains("page", error.Message);
        var fine = new InstancePlan { StepId = 2, TokenIds = [1], Positions = [0], QStarts = [0, 1], KvLengths = [1],
            PageStarts = [0, 1], PageIds = [3], PagePositions = [0], LogitTokens = [0] };
        var logits = new float[Config.VocabSize];
        Array.Fill(logits, float.NaN);
        cluster.Remotes[0].Step(fine, logits);
        Assert.All(logits, v => Assert.True(float.IsFinite(v)));
    }
}
