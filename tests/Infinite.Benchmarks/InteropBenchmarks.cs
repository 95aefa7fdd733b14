using BenchmarkDotNet.Attributes;
using Infinite.Native;

namespace Infinite.Benchmarks;

/// <summary>
/// What one crossing of the managed/native boundary costs, through the generated
/// declarations and the SafeHandle layer, next to the copy it carries. The design puts one
/// native call per step per instance; this shows that is free next to any real step.
/// </summary>
[MemoryDiagnoser]
public class InteropBenchmarks
{
    private Device _device = null!;
    private DeviceBuffer _buffer = null!;
    private readonly byte[] _host = new byte[4096];

    [GlobalSetup]
    public void Setup()
    {
        _device = Device.Cpu();
        _buffer = _device.Allocate(1 << 20);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _buffer.Dispose();
        _device.Dispose();
    }

    /// <summary>A call that does no work: the boundary plus the handle lease and the status check.</summary>
    [Benchmark(Baseline = true)]
    public void Synchronize() => _device.Synchronize();

    /// <summary>4 KiB host-to-buffer copy through the boundary.</summary>
    [Benchmark]
    public void Write4KiB() => _buffer.Write<byte>(_host);

    /// <summary>The same 4 KiB copy in pure managed code, the floor for the one above.</summary>
    [Benchmark]
    public void ManagedCopy4KiB() => _host.AsSpan().CopyTo(new Span<byte>(_scratch));

    private readonly byte[] _scratch = new byte[4096];
}
