namespace Infinite.Simulation;

/// <summary>
/// How the simulated GPUs talk: NVLink between GPUs of one node, InfiniBand between nodes. Figures are per GPU and
/// per direction, as the exchange of one instance uses its own GPUs' links. Defaults describe a DGX A100 (the
/// paper's 4 nodes x 8 A100): NVLink 3 at 300 GB/s per direction, one HDR InfiniBand NIC (200 Gb/s = 25 GB/s) per
/// GPU.
/// </summary>
public sealed record Interconnect
{
    /// <summary>GPUs that share one NVLink domain.</summary>
    public int GpusPerNode { get; init; } = 8;
    /// <summary>GPU to GPU inside a node.</summary>
    public Link IntraNode { get; init; } = new(300e9, 3e-6);
    /// <summary>GPU to GPU across nodes.</summary>
    public Link InterNode { get; init; } = new(25e9, 8e-6);

    /// <summary>DGX A100: NVLink 3 and HDR InfiniBand.</summary>
    public static Interconnect DgxA100 { get; } = new();

    /// <summary>DGX H100: NVLink 4 (450 GB/s per direction) and NDR InfiniBand (400 Gb/s = 50 GB/s) per GPU.</summary>
    public static Interconnect DgxH100 { get; } = new() { IntraNode = new(450e9, 3e-6), InterNode = new(50e9, 8e-6) };

    /// <summary>CPU instances in one process or on one host: the in-process communicator as docs/PERFORMANCE.md
    /// measures it on dev-cpu (comm bench: a 4 KiB round trip takes 35 us, so 17.5 us per message; 4 MiB messages move
    /// at 3.2 GB/s, one copy in and one out).</summary>
    public static Interconnect SharedMemory { get; } = new() { GpusPerNode = 1 << 20, IntraNode = new(3.2e9, 17.5e-6), InterNode = new(3.2e9, 17.5e-6) };

    /// <summary>The default interconnect for a device profile.</summary>
    public static Interconnect For(DeviceProfile device) => device.Name switch
    {
        "h100" => DgxH100,
        "cpu" => SharedMemory,
        _ => DgxA100,
    };

    /// <summary>The link between GPU <paramref name="a"/> and GPU <paramref name="b"/>.</summary>
    public Link Between(int a, int b) => a / GpusPerNode == b / GpusPerNode ? IntraNode : InterNode;

    /// <summary>Throws on nonsensical figures.</summary>
    public void Validate()
    {
        if (GpusPerNode < 1)
            throw new ArgumentException($"GPUs per node must be at least 1, got {GpusPerNode}.");
        IntraNode.Validate("intra-node link");
        InterNode.Validate("inter-node link");
    }
}
