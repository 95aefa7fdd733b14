using System.Runtime.CompilerServices;
using Infinite.Engine;
using Infinite.Models;
using Infinite.Native;
using Infinite.Runtime;
using Infinite.Runtime.Mpi;
using Infinite.Tokenization;

namespace Infinite;

/// <summary>
/// A loaded model ready to generate: its file (memory-mapped), tokenizer, chat template, native executor and the
/// continuous-batching engine, owned together. Thread-safe: any number of concurrent generations.
/// <code>
/// await using var engine = await InfiniteEngine.LoadAsync("model.gguf");
/// await foreach (var token in engine.GenerateAsync("Once upon a time")) Console.Write(token.Text);
/// </code>
/// </summary>
public sealed class InfiniteEngine : IAsyncDisposable
{
    private readonly ModelFile _file;
    private readonly IModelExecutor _executor;
    private readonly Device _device;
    private MpiCluster? _mpi;

    private InfiniteEngine(ModelFile file, Device device, IModelExecutor executor, InferenceEngine engine,
        Tokenizer tokenizer, InfiniteOptions options)
    {
        _file = file;
        _device = device;
        _executor = executor;
        Engine = engine;
        Tokenizer = tokenizer;
        ChatTemplate = ChatTemplate.For(file.Tokenizer);
        Options = options;
    }

    /// <summary>The model's path (a .gguf file or a Hugging Face folder).</summary>
    public string ModelPath => _file.Path;

    public LlamaConfig Config => _file.Config;

    public ITokenizer Tokenizer { get; }

    public ChatTemplate ChatTemplate { get; }

    public InfiniteOptions Options { get; }

    /// <summary>Longest prompt + completion a request may use.</summary>
    public int MaxContext => Options.MaxContext > 0 ? Math.Min(Options.MaxContext, Config.ContextLength) : Config.ContextLength;

    /// <summary>The scheduler, for statistics and step events.</summary>
    public InferenceEngine Engine { get; }

    /// <summary>The executor (page count and size, the model's config), for diagnostics.</summary>
    public IModelExecutor Executor => _executor;

    /// <summary>The native executor (its page pool and model) with one instance, for benchmarks; null with several.</summary>
    public NativeExecutor? NativeExecutor => _executor as NativeExecutor;

    /// <summary>The executor of <see cref="InfiniteOptions.Instances"/> &gt; 1 in-process instances; null with one.</summary>
    public DistributedExecutor? DistributedExecutor => _executor as DistributedExecutor;

    /// <summary>Opens the model at <paramref name="modelPath"/> (GGUF file or Hugging Face folder), loads its weights
    /// onto the device and reserves the KV cache. Progress goes to <paramref name="progress"/>.</summary>
    public static Task<InfiniteEngine> LoadAsync(string modelPath, InfiniteOptions? options = null,
        IProgress<LoadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelPath);
        return Task.Run(() => Load(modelPath, options ?? new InfiniteOptions(), progress), cancellationToken);
    }

    /// <summary>Loads the built-in demo model: the 12M-parameter Llama shape of the benchmarks with seeded random
    /// weights (its text is gibberish; it exists to try the engine without downloading anything). The file is
    /// written once into <see cref="DemoModel.CacheDirectory"/>.</summary>
    public static Task<InfiniteEngine> LoadDemoAsync(InfiniteOptions? options = null,
        IProgress<LoadProgress>? progress = null, CancellationToken cancellationToken = default)
        => Task.Run(() => Load(DemoModel.EnsureWritten(progress), options ?? new InfiniteOptions(), progress),
            cancellationToken);

    /// <summary>This process's MPI rank as the launcher tells it (Open MPI, MPICH, PMIx), or -1 outside mpirun.
    /// Known before MPI starts, so a program can choose between <see cref="LoadAsync"/> (rank 0) and
    /// <see cref="RunMpiWorkerAsync"/> (the others).</summary>
    public static int MpiRankFromEnvironment()
    {
        foreach (string name in new[] { "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK" })
        {
            if (int.TryParse(Environment.GetEnvironmentVariable(name), out int rank) && rank >= 0)
                return rank;
        }
        return -1;
    }

    /// <summary>A worker rank of <see cref="InfiniteOptions.Mpi"/>: loads the model and this rank's KV pool, then
    /// runs rank 0's steps and page moves until rank 0's engine is disposed. Returns the number of steps run.</summary>
    public static Task<long> RunMpiWorkerAsync(string modelPath, InfiniteOptions options,
        IProgress<LoadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelPath);
        ArgumentNullException.ThrowIfNull(options);
        return Task.Factory.StartNew(() =>
        {
            CheckMpi(options);
            using ModelFile file = ModelFile.Open(modelPath, progress);
            using MpiCluster cluster = MpiCluster.Join(file, PoolOptions(options, progress, instances: 1), options.CommunicationTimeout);
            if (cluster.Rank == 0)
                throw new InvalidOperationException("rank 0 drives the MPI cluster: call InfiniteEngine.LoadAsync with Mpi = true there");
            return cluster.RunWorker(cancellationToken);
        }, cancellationToken, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    private static void CheckMpi(InfiniteOptions options)
    {
        if (!options.Mpi)
            throw new ArgumentException("Mpi must be true for an MPI worker", nameof(options));
        if (options.Sparse is { StreamingStorage: StreamingStorage.Ring })
            throw new ArgumentException("Sparse.StreamingStorage = Ring is not supported over MPI ranks (rings live on one instance); use StreamingStorage.Paged", nameof(options));
        if (options.Instances != 1)
            throw new ArgumentException($"Mpi runs one instance per rank; Instances must be 1 (it is {options.Instances})", nameof(options));
        if (options.Sparse is { BudgetTokens: > 0, ReuseInterval: > 1 } reused)
            throw new ArgumentException($"sparse attention over MPI ranks selects pages every step: reusable selection with several instances is not supported yet (set Sparse.ReuseInterval = 1, it is {reused.ReuseInterval})", nameof(options));
        if (!string.Equals(options.Device, "cpu", StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"Mpi instances run on the CPU (host buffers); Device is {options.Device}", nameof(options));
    }

    private static NativeExecutorOptions PoolOptions(InfiniteOptions options, IProgress<LoadProgress>? progress, int instances) => new()
    {
        KvType = options.KvType,
        PageSize = options.PageSize,
        // Several in-process instances share the budget: each reserves its part (the model is loaded once for all).
        KvMemoryBytes = options.KvMemoryBytes / instances,
        SelectionSlots = options.Sparse is null ? 0 : options.MaxRunningRequests,
        MaxBudgetTokens = Math.Max(options.PageSize, options.Sparse?.BudgetTokens ?? options.PageSize),
        // Every rank and instance builds the same pool shape from these options alone (an MPI worker never sees the
        // sparse roles), so pages can move between them.
        SummaryBits = options.SummaryBits,
        // Streaming heads in rings: one per request slot, sized for the widest step (a chunk of MaxBatchTokens).
        RingStreamingHeads = options.Sparse is { StreamingStorage: StreamingStorage.Ring } ring ? ring.StreamingHeads : null,
        RingPagesPerSequence = options.Sparse is { StreamingStorage: StreamingStorage.Ring } sized
            ? StreamingRing.PagesPerSequence(sized, options.PageSize, options.MaxBatchTokens) : 0,
        Progress = progress is null ? null : progress.Report,
    };

    private static InfiniteEngine Load(string path, InfiniteOptions options, IProgress<LoadProgress>? progress)
    {
        if (options.Sparse is { StreamingStorage: StreamingStorage.Ring } && (options.Mpi || options.Instances > 1))
            throw new ArgumentException(
                $"Sparse.StreamingStorage = Ring keeps streaming heads in rings on one instance: it is not supported with several instances (Instances = {options.Instances}, Mpi = {options.Mpi}); use StreamingStorage.Paged",
                nameof(options));
        if (options.Mpi)
            CheckMpi(options);
        if (options.Instances < 1)
            throw new ArgumentOutOfRangeException(nameof(options), options.Instances, "Instances must be >= 1");
        // Several instances select pages every step (a global top-k at each home): a reused selection is not supported.
        if (options.Instances > 1 && options.Sparse is { BudgetTokens: > 0, ReuseInterval: > 1 } reused)
            throw new ArgumentException(
                $"sparse attention with several instances (Instances = {options.Instances}) selects pages every step: reusable selection with several instances is not supported yet (set Sparse.ReuseInterval = 1, it is {reused.ReuseInterval})",
                nameof(options));
        if (options.KvMemoryBytes / options.Instances < 1)
            throw new ArgumentOutOfRangeException(nameof(options), options.KvMemoryBytes, $"KvMemoryBytes cannot be split over {options.Instances} instances");
        ModelFile file = ModelFile.Open(path, progress);
        Device? device = null;
        IModelExecutor? executor = null;
        MpiCluster? mpi = null;
        try
        {
            device = OpenDevice(options.Device);
            var tokenizer = Infinite.Tokenization.Tokenizer.Create(file.Tokenizer);
            SparseOptions? sparse = options.Sparse;
            NativeExecutorOptions pool = PoolOptions(options, progress, options.Instances);
            if (options.Mpi)
            {
                mpi = MpiCluster.Join(file, pool, options.CommunicationTimeout);
                if (mpi.Rank != 0)
                    throw new InvalidOperationException($"this process is MPI rank {mpi.Rank}, a worker: call InfiniteEngine.RunMpiWorkerAsync there");
                // A worker's reply waits for its whole step (a long prefill chunk): far longer than one message.
                executor = mpi.CreateExecutor(file.Config, TimeSpan.FromTicks(Math.Max(options.CommunicationTimeout.Ticks * 20, TimeSpan.FromMinutes(10).Ticks)));
            }
            else
            {
                executor = options.Instances == 1
                    ? new NativeExecutor(file, pool, device)
                    : new DistributedExecutor(file, new DistributedExecutorOptions
                    {
                        Instances = options.Instances,
                        Instance = pool,
                        CommunicationTimeout = options.CommunicationTimeout,
                    }, device);
            }
            var engine = new InferenceEngine(executor, tokenizer, new EngineOptions
            {
                MaxBatchTokens = options.MaxBatchTokens,
                MaxRunningRequests = options.MaxRunningRequests,
                MaxQueuedRequests = options.MaxQueuedRequests,
                MaxContext = options.MaxContext,
                Sparse = sparse,
                Cluster = options.Cluster,
            });
            return new InfiniteEngine(file, device, executor, engine, tokenizer, options) { _mpi = mpi };
        }
        catch
        {
            executor?.Dispose();
            mpi?.Dispose();
            device?.Dispose();
            file.Dispose();
            throw;
        }
    }

    /// <summary>"cpu", "cuda", "cuda:1".</summary>
    internal static Device OpenDevice(string spec)
    {
        string[] parts = spec.Trim().ToLowerInvariant().Split(':');
        DeviceKind kind = parts[0] switch
        {
            "cpu" => DeviceKind.Cpu,
            "cuda" or "gpu" => DeviceKind.Cuda,
            _ => throw new ArgumentException($"unknown device '{spec}': use cpu, cuda or cuda:N"),
        };
        int ordinal = 0;
        if (parts.Length > 2 || (parts.Length == 2 && !int.TryParse(parts[1], out ordinal)) || ordinal < 0)
        {
            throw new ArgumentException($"bad device '{spec}': use cpu, cuda or cuda:N");
        }
        return Device.Open(kind, ordinal);
    }

    /// <summary>Streams the completion of <paramref name="request"/>.</summary>
    public IAsyncEnumerable<GeneratedToken> GenerateAsync(GenerationRequest request,
        CancellationToken cancellationToken = default) => Engine.GenerateAsync(request, cancellationToken);

    /// <summary>Streams a completion of <paramref name="prompt"/> (BOS added where the model wants it).</summary>
    public IAsyncEnumerable<GeneratedToken> GenerateAsync(string prompt, int maxTokens = 256,
        SamplingOptions? sampling = null, CancellationToken cancellationToken = default)
        => Engine.GenerateAsync(new GenerationRequest
        {
            Prompt = prompt,
            MaxTokens = maxTokens,
            Sampling = sampling ?? new SamplingOptions(),
        }, cancellationToken);

    /// <summary>Streams the assistant's reply to <paramref name="messages"/>, rendered with the model's chat template.</summary>
    public IAsyncEnumerable<GeneratedToken> ChatAsync(IReadOnlyList<ChatMessage> messages, int maxTokens = 256,
        SamplingOptions? sampling = null, IReadOnlyList<string>? stop = null, CancellationToken cancellationToken = default)
        => Engine.GenerateAsync(ChatRequest(messages, maxTokens, sampling, stop), cancellationToken);

    /// <summary>The request that asks for the assistant's reply to <paramref name="messages"/>.</summary>
    public GenerationRequest ChatRequest(IReadOnlyList<ChatMessage> messages, int? maxTokens = null,
        SamplingOptions? sampling = null, IReadOnlyList<string>? stop = null)
    {
        string text = ChatTemplate.Render(messages, addGenerationPrompt: true);
        return new GenerationRequest
        {
            PromptTokens = Tokenizer.Encode(text, addBos: !ChatTemplate.WritesBos, parseSpecial: true),
            MaxTokens = maxTokens,
            Sampling = sampling ?? new SamplingOptions(),
            Stop = stop,
        };
    }

    /// <summary>Generates the whole completion of <paramref name="request"/>.</summary>
    public Task<GenerationResult> CompleteAsync(GenerationRequest request, CancellationToken cancellationToken = default)
        => Engine.CompleteAsync(request, cancellationToken);

    /// <summary>Stops the engine (cancelling in-flight requests), then frees the KV cache, the weights and the file.</summary>
    public async ValueTask DisposeAsync()
    {
        await Engine.DisposeAsync().ConfigureAwait(false);
        _executor.Dispose(); // under MPI: shuts the worker ranks down
        _mpi?.Dispose();
        _device.Dispose();
        _file.Dispose();
    }
}
