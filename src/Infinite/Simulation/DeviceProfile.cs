using System.Globalization;

namespace Infinite.Simulation;

/// <summary>
/// The constants of one accelerator (or of this machine's CPU) that a roofline step-time model needs: how fast it
/// reads memory, how fast it multiplies, how much memory it has, and how far real kernels get from those peaks.
/// Datasheet peaks are kept apart from the efficiency factors so that calibrating against a benchmark changes only
/// the factors, and a reader can see which number came from the vendor and which from a measurement.
/// </summary>
public sealed record DeviceProfile
{
    /// <summary>Short name used on the command line and in reports ("a100", "h100", "cpu").</summary>
    public required string Name { get; init; }
    /// <summary>Human description with the source of the figures.</summary>
    public required string Description { get; init; }
    /// <summary>Peak memory (HBM / DRAM) read bandwidth in bytes per second.</summary>
    public required double MemoryBandwidth { get; init; }
    /// <summary>Peak dense matrix throughput in FLOP/s at the precision the weights are kept in.</summary>
    public required double PeakFlops { get; init; }
    /// <summary>Device memory in bytes.</summary>
    public required double MemoryBytes { get; init; }
    /// <summary>Fraction of <see cref="MemoryBytes"/> the engine may use (vLLM's gpu_memory_utilization: 0.9).</summary>
    public double UsableMemoryFraction { get; init; } = 0.9;
    /// <summary>Bytes per weight as the device runs the model (2 = bf16 on GPUs; 4 = f32 on this machine's CPU).</summary>
    public double WeightBytesPerParameter { get; init; } = 2;
    /// <summary>Bytes per K or V element in the KV cache (bf16).</summary>
    public double KvBytesPerElement { get; init; } = 2;
    /// <summary>Fraction of <see cref="MemoryBandwidth"/> that streaming reads (weights, KV pages) reach.</summary>
    public double MemoryEfficiency { get; init; } = 0.8;
    /// <summary>Fraction of <see cref="PeakFlops"/> that large GEMMs reach.</summary>
    public double GemmEfficiency { get; init; } = 0.6;
    /// <summary>Fraction of <see cref="PeakFlops"/> that attention (prefill tiles) reaches (FA2: ~35-50%).</summary>
    public double AttentionEfficiency { get; init; } = 0.45;
    /// <summary>Fixed cost per layer per step (kernel launches, norms, RoPE, sampling share), in seconds.</summary>
    public double LayerOverheadSeconds { get; init; } = 20e-6;
    /// <summary>Shortest time one GEMM kernel takes from launch to completion however little it does (GPUs: about
    /// 5 us, the order of a CUDA kernel launch); a floor that only tensor parallelism over many GPUs reaches. 0 on
    /// the CPU, whose kernels are plain loops in one parallel region.</summary>
    public double MinKernelSeconds { get; init; } = 5e-6;

    /// <summary>NVIDIA A100 SXM4 80GB datasheet: 2,039 GB/s HBM2e, 312 TFLOP/s dense bf16, 80 GB.</summary>
    public static DeviceProfile A100 { get; } = new()
    {
        Name = "a100",
        Description = "NVIDIA A100-SXM4-80GB (datasheet: 2039 GB/s HBM2e, 312 TFLOP/s dense BF16, 80 GB)",
        MemoryBandwidth = 2039e9,
        PeakFlops = 312e12,
        MemoryBytes = 80e9,
    };

    /// <summary>NVIDIA H100 SXM5 80GB datasheet: 3.35 TB/s HBM3, 989 TFLOP/s dense bf16, 80 GB.</summary>
    public static DeviceProfile H100 { get; } = new()
    {
        Name = "h100",
        Description = "NVIDIA H100-SXM5-80GB (datasheet: 3350 GB/s HBM3, 989 TFLOP/s dense BF16, 80 GB)",
        MemoryBandwidth = 3350e9,
        PeakFlops = 989e12,
        MemoryBytes = 80e9,
        GemmEfficiency = 0.55,
        AttentionEfficiency = 0.4,
        LayerOverheadSeconds = 15e-6,
    };

    /// <summary>
    /// This development machine's CPU as measured in docs/PERFORMANCE.md (dev-cpu, 2 threads): 19.7 GB/s streaming
    /// read and 289 GFLOP/s f32 FMA peak from the attention bench; attention decode reaches 82-99% of the read
    /// bandwidth (efficiency 0.85); a 4K prefill of the 12M-parameter bench model runs at 3,242 tokens/s, about 45%
    /// of peak FMA over its GEMM and attention FLOPs (efficiency 0.45); weights are f32. This is the seam for
    /// validating the simulator against real CPU multi-instance runs (issue 8, item 4).
    /// </summary>
    public static DeviceProfile Cpu { get; } = new()
    {
        Name = "cpu",
        Description = "dev-cpu, 2 threads (docs/PERFORMANCE.md: 19.7 GB/s read, 289 GFLOP/s f32 FMA, 24 GiB)",
        MemoryBandwidth = 19.7e9,
        PeakFlops = 289e9,
        MemoryBytes = 24.0 * (1L << 30),
        UsableMemoryFraction = 0.5,
        WeightBytesPerParameter = 4,
        MemoryEfficiency = 0.85,
        GemmEfficiency = 0.45,
        AttentionEfficiency = 0.6,
        LayerOverheadSeconds = 50e-6,
        MinKernelSeconds = 0,
    };

    /// <summary>The profiles <see cref="Parse"/> knows.</summary>
    public static IReadOnlyList<DeviceProfile> Known { get; } = [A100, H100, Cpu];

    /// <summary>Looks a profile up by name ("a100", "A100-80GB", "h100", "cpu").</summary>
    /// <exception cref="ArgumentException">The name is not a known device.</exception>
    public static DeviceProfile Parse(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        string key = name.Trim().ToLowerInvariant();
        foreach (DeviceProfile p in Known)
        {
            if (key == p.Name || key.StartsWith(p.Name + "-", StringComparison.Ordinal))
                return p;
        }
        throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
            $"Unknown device '{name}': expected one of {string.Join(", ", Known.Select(k => k.Name))}."), nameof(name));
    }
}
