using Infinite.Models;

namespace Infinite.Tests.Models;

/// <summary>A temporary folder deleted on dispose, and the small model configurations the model tests use.</summary>
internal sealed class ModelTestFiles : IDisposable
{
    public string Folder { get; } = Directory.CreateTempSubdirectory("infinite-models-").FullName;

    public string PathOf(string name) => Path.Combine(Folder, name);

    /// <summary>Small enough to write in milliseconds; every dimension a multiple of 32 so Q8_0 applies.</summary>
    public static LlamaConfig Small { get; } = new(
        VocabSize: 300, Dim: 64, Layers: 2, QHeads: 4, KvHeads: 2, HeadDim: 16, FfnDim: 96,
        NormEps: 1e-5f, RopeTheta: 10000f, RopeStyle: RopeStyle.Interleaved, RopeScaling: RopeScaling.None,
        TiedEmbeddings: false, ContextLength: 256);

    public string WriteGguf(LlamaConfig config, int seed, TensorType type = TensorType.F32, string name = "model.gguf")
    {
        string path = PathOf(name);
        SyntheticModel.WriteGguf(path, config, seed, type);
        return path;
    }

    public void Dispose()
    {
        try { Directory.Delete(Folder, recursive: true); }
        catch (IOException) { }   // a mapping still closing on another thread; the OS temp cleaner takes it
    }
}
