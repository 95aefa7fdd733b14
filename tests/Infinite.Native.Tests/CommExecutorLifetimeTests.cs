using Infinite.Models;
using Infinite.Runtime;

namespace Infinite.Native.Tests;

/// <summary>A distributed executor's native objects (one shared model, a pool and an endpoint per instance, one
/// group) are counted while it lives and all released by Dispose; a failed instance's endpoint goes at once.</summary>
public sealed class CommExecutorLifetimeTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("infinite-comm-life-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void A_distributed_executor_releases_every_native_object()
    {
        string path = Path.Combine(_dir, "tiny.gguf");
        SyntheticModel.WriteGguf(path, SyntheticModel.DemoConfig with
        {
            Dim = 64, Layers = 2, QHeads = 4, KvHeads = 2, HeadDim = 16, FfnDim = 96, VocabSize = 300, ContextLength = 256,
        }, seed: 3);
        using ModelFile file = ModelFile.Open(path);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        LiveObjects before = InfiniteLibrary.GetLiveObjects();

        var executor = new DistributedExecutor(file, new DistributedExecutorOptions
        {
            Instances = 3,
            Instance = new NativeExecutorOptions { PageSize = 16, PageCount = 4 },
        });
        LiveObjects alive = InfiniteLibrary.GetLiveObjects();
        Assert.Equal((before.Models + 1, before.PagePools + 3, before.Comms + 3, before.CommGroups + 1, before.Devices + 1),
            (alive.Models, alive.PagePools, alive.Comms, alive.CommGroups, alive.Devices));

        executor.FailInstance(2);
        Assert.Equal(before.Comms + 2, InfiniteLibrary.GetLiveObjects().Comms);

        executor.Dispose();
        executor.Dispose();
        Assert.Equal(before, InfiniteLibrary.GetLiveObjects());
    }
}
