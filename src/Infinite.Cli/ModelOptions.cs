using System.CommandLine;
using System.Globalization;
using Infinite.Engine;
using Infinite.Models;
using Infinite.Native;

namespace Infinite.Cli;

/// <summary>The options every command that loads a model shares (--model, --device, KV cache, sparse attention).</summary>
internal sealed class ModelOptions
{
    public Option<string?> Model { get; } = new("--model", "-m")
    {
        Description = "A .gguf file or a Hugging Face folder (config.json + *.safetensors). Omitted: the built-in demo model (random weights).",
    };

    public Option<string> Device { get; } = new("--device")
    {
        Description = "cpu, cuda or cuda:N.",
        DefaultValueFactory = _ => "cpu",
    };

    public Option<string> KvType { get; } = new("--kv-type")
    {
        Description = "KV cache element type: f32, f16, bf16 or i8 (int8 with a scale per token and head: half of bf16's bytes, CPU only).",
        DefaultValueFactory = _ => "bf16",
    };

    public Option<int> PageSize { get; } = new("--page-size")
    {
        Description = "Tokens per KV page (16 to 256, a power of two).",
        DefaultValueFactory = _ => 64,
    };

    public Option<string> KvMemory { get; } = new("--kv-memory")
    {
        Description = "KV cache reserved at load, e.g. 512MiB, 2GiB.",
        DefaultValueFactory = _ => "2GiB",
    };

    public Option<int> MaxContext { get; } = new("--max-context")
    {
        Description = "Longest prompt + completion per request (0: the model's context length).",
        DefaultValueFactory = _ => 0,
    };

    public Option<bool> Sparse { get; } = new("--sparse")
    {
        Description = "LServe sparse attention: streaming heads (sink + local window) and page selection for retrieval heads.",
    };

    public Option<string?> HeadGates { get; } = new("--head-gates")
    {
        Description = "With --sparse: a DuoAttention gate file (one row per layer, one value per KV head). Omitted: every other KV head streams.",
    };

    public Option<double> Sparsity { get; } = new("--sparsity")
    {
        Description = "With --head-gates: the fraction of heads that stream (a global quantile of the gates).",
        DefaultValueFactory = _ => 0.5,
    };

    public Option<bool> SparseRing { get; } = new("--sparse-ring")
    {
        Description = "With --sparse: keep streaming heads' KV in a fixed ring of pages per request (sink + local window), so their memory stays constant however long the context. One instance only.",
    };

    public Option<int> Budget { get; } = new("--sparse-budget")
    {
        Description = "With --sparse: tokens a retrieval head reads at decode.",
        DefaultValueFactory = _ => 4096,
    };

    public Option<int> SummaryBits { get; } = new("--summary-bits")
    {
        Description = "Storage of the key min/max page summaries sparse page selection reads: 8 (int8, a quarter of float32's bytes), 16 (bfloat16) or 32 (float32).",
        DefaultValueFactory = _ => 8,
    };

    public Option<int> Instances { get; } = new("--instances")
    {
        Description = "In-process instances the KV cache is spread over (DistAttention; --kv-memory is split between them, the weights are shared). With --sparse, retrieval heads reselect pages every step.",
        DefaultValueFactory = _ => 1,
    };

    public Option<string> ClusterPolicy { get; } = new("--cluster-policy")
    {
        Description = "With --instances: borrowing (a request may hold pages on other instances; pages migrate when it pays) or static (each request bound to one instance's pool).",
        DefaultValueFactory = _ => "borrowing",
    };

    public Option<bool> Mpi { get; } = new("--mpi")
    {
        Description = "Under mpirun: one instance per rank, each with its own --kv-memory of KV pages; rank 0 runs the engine (and serves HTTP), the other ranks serve its steps. Needs Open MPI.",
    };

    public void AddTo(Command command)
    {
        foreach (Option option in new Option[] { Model, Device, KvType, PageSize, KvMemory, MaxContext, Sparse, HeadGates, Sparsity, SparseRing, Budget, SummaryBits, Instances, ClusterPolicy, Mpi })
        {
            command.Options.Add(option);
        }
    }

    /// <summary>The engine options these flags describe; sparse head roles need the model's config.</summary>
    public InfiniteOptions Read(ParseResult result, int maxBatchTokens = 2048) => new()
    {
        Instances = ReadInstances(result),
        Mpi = ReadMpi(result),
        Cluster = new ClusterOptions { Policy = ParseClusterPolicy(result.GetValue(ClusterPolicy)!) },
        Device = result.GetValue(Device)!,
        KvType = ParseKvType(result.GetValue(KvType)!),
        PageSize = result.GetValue(PageSize),
        SummaryBits = ReadSummaryBits(result),
        KvMemoryBytes = ParseBytes(result.GetValue(KvMemory)!),
        MaxContext = result.GetValue(MaxContext),
        MaxBatchTokens = maxBatchTokens,
    };

    /// <summary>Sparse options for <paramref name="config"/> when --sparse is given, else null.</summary>
    public SparseOptions? ReadSparse(ParseResult result, LlamaConfig config)
    {
        if (!result.GetValue(Sparse))
        {
            return null;
        }
        bool[] streaming;
        if (result.GetValue(HeadGates) is { } gates)
        {
            HeadRoles roles = HeadRoles.LoadGateFile(gates, result.GetValue(Sparsity));
            if (roles.Layers != config.Layers || roles.KvHeads != config.KvHeads)
            {
                throw new ArgumentException(
                    $"{gates} has {roles.Layers} layers x {roles.KvHeads} KV heads; the model has {config.Layers} x {config.KvHeads}");
            }
            streaming = new bool[config.Layers * config.KvHeads];
            for (int l = 0; l < config.Layers; l++)
            {
                for (int h = 0; h < config.KvHeads; h++)
                {
                    streaming[l * config.KvHeads + h] = roles[l, h] == HeadRole.Streaming;
                }
            }
        }
        else
        {
            streaming = HalfStreaming(config);
        }
        bool several = result.GetValue(Instances) > 1 || result.GetValue(Mpi);
        StreamingStorage storage = result.GetValue(SparseRing) ? StreamingStorage.Ring : StreamingStorage.Paged;
        if (storage == StreamingStorage.Ring && several)
        {
            throw new ArgumentException("--sparse-ring keeps streaming heads in rings on one instance: not with --instances above 1 or --mpi");
        }
        // Several instances (or ranks) select pages every step (a global top-k at each home; no reusable selection yet).
        return several
            ? new SparseOptions { StreamingHeads = streaming, BudgetTokens = result.GetValue(Budget), ReuseInterval = 1 }
            : new SparseOptions { StreamingHeads = streaming, BudgetTokens = result.GetValue(Budget), StreamingStorage = storage };
    }

    /// <summary>--summary-bits, checked: 8, 16 or 32.</summary>
    public int ReadSummaryBits(ParseResult result)
    {
        int bits = result.GetValue(SummaryBits);
        return bits is 8 or 16 or 32 ? bits : throw new ArgumentException($"--summary-bits {bits}: use 8, 16 or 32");
    }

    /// <summary>--mpi, checked: not with --instances above 1 (one instance per rank).</summary>
    public bool ReadMpi(ParseResult result)
    {
        if (!result.GetValue(Mpi))
        {
            return false;
        }
        if (result.GetValue(Instances) > 1)
        {
            throw new ArgumentException("--mpi runs one instance per rank: use mpirun -np N instead of --instances");
        }
        return true;
    }

    /// <summary>True when --mpi is given and this process is a worker rank (1 ..) of the mpirun job.</summary>
    public bool IsMpiWorker(ParseResult result) => ReadMpi(result) && InfiniteEngine.MpiRankFromEnvironment() > 0;

    /// <summary>Runs this worker rank until rank 0 shuts it down; one status line before and after.</summary>
    public async Task<int> RunMpiWorkerAsync(ParseResult result, TextWriter status, CancellationToken cancellationToken)
    {
        int rank = InfiniteEngine.MpiRankFromEnvironment();
        string path = result.GetValue(Model) ?? DemoModel.EnsureWritten(null);
        status.WriteLine($"MPI rank {rank}: worker instance for {Path.GetFileName(path)}; rank 0 runs the engine");
        long steps = await InfiniteEngine.RunMpiWorkerAsync(path, Read(result), null, cancellationToken).ConfigureAwait(false);
        status.WriteLine($"MPI rank {rank}: {steps} steps served, shut down by rank 0");
        return 0;
    }

    /// <summary>--instances, checked: 1 to 1024 (with --sparse, pages are selected every step).</summary>
    public int ReadInstances(ParseResult result)
    {
        int instances = result.GetValue(Instances);
        if (instances is < 1 or > 1024)
        {
            throw new ArgumentException($"--instances {instances}: use 1 to 1024");
        }
        return instances;
    }

    /// <summary>Every odd KV head of every layer streams: half the heads, as DuoAttention's 0.5 quantile.</summary>
    public static bool[] HalfStreaming(LlamaConfig config)
    {
        var streaming = new bool[config.Layers * config.KvHeads];
        for (int i = 0; i < streaming.Length; i++)
        {
            streaming[i] = i % config.KvHeads % 2 == 1;
        }
        return streaming;
    }

    public static ClusterPolicy ParseClusterPolicy(string text) => text.Trim().ToLowerInvariant() switch
    {
        "borrowing" or "borrow" => Engine.ClusterPolicy.Borrowing,
        "static" => Engine.ClusterPolicy.Static,
        _ => throw new ArgumentException($"--cluster-policy '{text}': use borrowing or static"),
    };

    public static DataType ParseKvType(string text) => text.Trim().ToLowerInvariant() switch
    {
        "f32" or "float32" or "fp32" => DataType.F32,
        "f16" or "float16" or "fp16" => DataType.F16,
        "bf16" or "bfloat16" => DataType.Bf16,
        "i8" or "int8" => DataType.I8,
        _ => throw new ArgumentException($"--kv-type '{text}': use f32, f16, bf16 or i8"),
    };

    /// <summary>"2GiB", "512MiB", "1G", "1000000" (bytes).</summary>
    public static long ParseBytes(string text)
    {
        string t = text.Trim();
        int split = 0;
        while (split < t.Length && (char.IsAsciiDigit(t[split]) || t[split] == '.'))
        {
            split++;
        }
        if (split == 0 || !double.TryParse(t[..split], NumberStyles.Float, CultureInfo.InvariantCulture, out double value))
        {
            throw new ArgumentException($"'{text}' is not a size: use e.g. 512MiB or 2GiB");
        }
        double unit = t[split..].Trim().ToLowerInvariant() switch
        {
            "" or "b" => 1,
            "k" or "kb" => 1e3,
            "kib" => 1024,
            "m" or "mb" => 1e6,
            "mib" => 1024.0 * 1024,
            "g" or "gb" => 1e9,
            "gib" => 1024.0 * 1024 * 1024,
            "t" or "tb" => 1e12,
            "tib" => 1024.0 * 1024 * 1024 * 1024,
            _ => throw new ArgumentException($"'{text}': unknown unit '{t[split..]}' (use B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)"),
        };
        double bytes = value * unit;
        if (bytes < 1 || bytes > long.MaxValue)
        {
            throw new ArgumentException($"'{text}' is out of range");
        }
        return (long)bytes;
    }
}
