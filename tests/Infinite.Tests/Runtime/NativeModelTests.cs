using Infinite.Models;
using Infinite.Native;
using Infinite.Runtime;

namespace Infinite.Tests.Runtime;

/// <summary>The binding-level model: lifetime of its handle and errors of <c>inf_model_create</c>.</summary>
public sealed class NativeModelTests
{
    [Fact]
    public void The_model_keeps_its_device_alive_and_disposes_once()
    {
        using var weights = TestWeights.Random(TestWeights.TinyConfig(), seed: 91);
        NativeTensor[] tensors = Tensors(weights);
        var device = Device.Cpu();
        NativeModel model = NativeModel.Create(device, NativeExecutor.ToNative(weights.Config), tensors);
        PagePool pool = PagePool.Create(device, new PagePoolConfig(2, 2, 16, 16, 2));
        device.Dispose();

        var logits = new float[64];
        model.Step(pool, new NativeStepPlan
        {
            TokenIds = [3], Positions = [0], QStarts = [0, 1], KvLengths = [1], PageStarts = [0, 1], PageIds = [1], LogitTokens = [0],
        }, logits);
        Assert.Contains(logits, v => v != 0);
        Assert.Equal(0, model.Bytes); // every tensor is aligned F32, used in place

        pool.Dispose();
        model.Dispose();
        model.Dispose();
        Assert.True(model.Handle.IsClosed);
        Assert.Throws<ObjectDisposedException>(() => model.Bytes);
    }

    [Fact]
    public void Live_object_counts_include_models()
    {
        using var weights = TestWeights.Random(TestWeights.TinyConfig(), seed: 93);
        LiveObjects before = InfiniteLibrary.GetLiveObjects();
        using (var device = Device.Cpu())
        using (NativeModel model = NativeModel.Create(device, NativeExecutor.ToNative(weights.Config), Tensors(weights)))
        {
            Assert.Equal(before.Models + 1, InfiniteLibrary.GetLiveObjects().Models);
        }
        Assert.Equal(before, InfiniteLibrary.GetLiveObjects());
    }

    [Fact]
    public void Missing_and_extra_tensors_are_named()
    {
        using var weights = TestWeights.Random(TestWeights.TinyConfig(), seed: 92);
        using var device = Device.Cpu();
        NativeTensor[] tensors = Tensors(weights);
        NativeModelConfig config = NativeExecutor.ToNative(weights.Config);

        var error = Assert.Throws<InfiniteException>(() => NativeModel.Create(device, config, tensors.Where(t => t.Name != "output.weight").ToArray()));
        Assert.Contains("output.weight is missing", error.NativeMessage);

        error = Assert.Throws<InfiniteException>(() => NativeModel.Create(device, config with { TiedEmbeddings = true }, tensors));
        Assert.Contains("output.weight", error.NativeMessage);
        Assert.Contains("not a tensor of this model", error.NativeMessage);

        Assert.Throws<ArgumentException>(() => new NativeTensor("x", inf_tensor_type.F32, [1, 2, 3, 4, 5], 0, 480));
    }

    private static NativeTensor[] Tensors(TestWeights weights) =>
        weights.Tensors.Select(t => new NativeTensor(t.Name, (inf_tensor_type)(int)t.Type, t.Shape, weights.GetPointer(t), t.Bytes)).ToArray();
}
