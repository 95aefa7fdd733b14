namespace Infinite.Native;

/// <summary>
/// A paged KV cache on one device, reserved once at creation. The scheduler decides which pages a
/// request owns; this type stores keys and values into them, reads them back, keeps the page summaries,
/// and copies pages to another pool (on this or another device), the primitive of migration.
/// </summary>
public sealed class PagePool : IDisposable
{
    private PagePool(Device device, PagePoolHandle handle, PagePoolConfig config)
    {
        Device = device;
        Handle = handle;
        Config = config;
    }

    public Device Device { get; }

    /// <summary>The native handle this pool owns.</summary>
    public PagePoolHandle Handle { get; }

    public PagePoolConfig Config { get; }

    /// <summary>Reserves a pool of <paramref name="config"/>'s shape on <paramref name="device"/>.</summary>
    /// <exception cref="InfiniteException">A bad field (named in the message) or not enough memory.</exception>
    public static unsafe PagePool Create(Device device, PagePoolConfig config)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(config);
        if (config.LayerKvHeads is { } layerHeads && layerHeads.Count != config.Layers)
        {
            throw new ArgumentException($"LayerKvHeads has {layerHeads.Count} entries but the pool has {config.Layers} layers", nameof(config));
        }
        int[]? heads = config.LayerKvHeads?.ToArray();
        PagePoolHandle handle;
        fixed (int* h = heads)
        {
            inf_page_pool_config native = config.ToNative();
            native.layer_kv_heads = h;  // read during the call only
            handle = PagePoolHandle.Create(device.Handle, native);
        }
        try
        {
            using var pool = new HandleLease(handle);
            inf_page_pool_config actual = PagePoolConfig.Empty();
            NativeStatus.Check(NativeMethods.inf_page_pool_get_config((inf_page_pool*)pool.Value, &actual));
            return new PagePool(device, handle, PagePoolConfig.FromNative(actual));
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>Bytes of device memory the pool holds.</summary>
    public unsafe long Bytes
    {
        get
        {
            using var pool = new HandleLease(Handle);
            ulong bytes;
            NativeStatus.Check(NativeMethods.inf_page_pool_bytes((inf_page_pool*)pool.Value, &bytes));
            return (long)bytes;
        }
    }

    /// <summary>Stores tokens' keys and values of <paramref name="layer"/>: token i (k and v rows
    /// <c>[the layer's KvHeads * HeadDim]</c>, see <see cref="PagePoolConfig.HeadsOf"/>) goes to slot <paramref name="slots"/>[i] of page <paramref name="pages"/>[i].</summary>
    public unsafe void Append(int layer, ReadOnlySpan<int> pages, ReadOnlySpan<int> slots, ReadOnlySpan<float> k, ReadOnlySpan<float> v)
    {
        int tokens = pages.Length;
        if (slots.Length != tokens)
        {
            throw new ArgumentException($"slots has {slots.Length} entries but pages has {tokens}", nameof(slots));
        }
        long width = (long)tokens * ((uint)layer < (uint)Config.Layers ? Config.TokenWidthOf(layer) : Config.TokenWidth);
        if (k.Length != width || v.Length != width)
        {
            throw new ArgumentException($"k and v must hold tokens * the layer's kv_heads * head_dim = {width} floats (k has {k.Length}, v has {v.Length})", k.Length != width ? nameof(k) : nameof(v));
        }
        using var pool = new HandleLease(Handle);
        fixed (int* p = pages, s = slots)
        fixed (float* kp = k, vp = v)
        {
            NativeStatus.Check(NativeMethods.inf_page_pool_append((inf_page_pool*)pool.Value, layer, tokens, p, s, kp, vp));
        }
    }

    /// <summary>Reads one page of one layer as float32 <c>[the layer's KvHeads][PageSize][HeadDim]</c>.</summary>
    public unsafe void ReadPage(int layer, int page, Span<float> k, Span<float> v)
    {
        int floats = (uint)layer < (uint)Config.Layers ? Config.PageFloatsOf(layer) : Config.PageFloats;
        if (k.Length < floats || v.Length < floats)
        {
            throw new ArgumentException($"k and v need {floats} floats each", k.Length < floats ? nameof(k) : nameof(v));
        }
        using var pool = new HandleLease(Handle);
        fixed (float* kp = k, vp = v)
        {
            NativeStatus.Check(NativeMethods.inf_page_pool_read_page((inf_page_pool*)pool.Value, layer, page, kp, vp));
        }
    }

    /// <summary>One page's summary, float32 <c>[KvHeads][PageSize / LogicalPageSize][2][HeadDim]</c> (min, then max).</summary>
    public unsafe float[] ReadSummary(int layer, int page)
    {
        var summary = new float[Math.Max((uint)layer < (uint)Config.Layers ? Config.SummaryFloatsOf(layer) : Config.SummaryFloats, 1)];
        using var pool = new HandleLease(Handle);
        fixed (float* p = summary)
        {
            NativeStatus.Check(NativeMethods.inf_page_pool_read_summary((inf_page_pool*)pool.Value, layer, page, p));
        }
        return summary;
    }

    /// <summary>Copies pages (every layer: K, V and summaries) of <paramref name="source"/> into this pool:
    /// <paramref name="sourcePages"/>[i] goes to <paramref name="destinationPages"/>[i].</summary>
    public unsafe void CopyPagesFrom(PagePool source, ReadOnlySpan<int> sourcePages, ReadOnlySpan<int> destinationPages)
    {
        ArgumentNullException.ThrowIfNull(source);
        if (sourcePages.Length != destinationPages.Length)
        {
            throw new ArgumentException($"{sourcePages.Length} source pages but {destinationPages.Length} destination pages", nameof(destinationPages));
        }
        using var dst = new HandleLease(Handle);
        using var src = new HandleLease(source.Handle);
        fixed (int* d = destinationPages, s = sourcePages)
        {
            NativeStatus.Check(NativeMethods.inf_page_pool_copy_pages((inf_page_pool*)dst.Value, d, (inf_page_pool*)src.Value, s, sourcePages.Length));
        }
    }

    /// <summary>Migration between instances: sends <paramref name="pages"/> (every layer's K and V, scales and
    /// summaries) to <paramref name="peer"/>, which stores them with <see cref="ReceivePages"/> into a pool of the same
    /// shape. Returns without waiting for the receiver. No pages: nothing is sent (the receiver receives none either).</summary>
    /// <exception cref="PeerFailedException">The peer is gone.</exception>
    public unsafe void SendPages(Communicator comm, int peer, int tag, ReadOnlySpan<int> pages)
    {
        ArgumentNullException.ThrowIfNull(comm);
        comm.CheckAddress(peer, tag);
        if (pages.IsEmpty)
        {
            return;
        }
        using var endpoint = new HandleLease(comm);
        using var pool = new HandleLease(Handle);
        fixed (int* p = pages)
        {
            NativeStatus.Check(NativeMethods.inf_page_pool_send_pages((inf_comm*)endpoint.Value, peer, tag,
                (inf_page_pool*)pool.Value, p, pages.Length));
        }
    }

    /// <summary>Receives the pages <paramref name="peer"/> sent with <see cref="SendPages"/> (same tag, same count)
    /// into this pool's <paramref name="pages"/>, in order. A pool of another shape or dtype is refused, naming the
    /// field that differs.</summary>
    /// <exception cref="PeerFailedException">The peer is gone.</exception>
    /// <exception cref="CommunicationTimeoutException">Nothing arrived within the communicator's timeout.</exception>
    public unsafe void ReceivePages(Communicator comm, int peer, int tag, ReadOnlySpan<int> pages)
    {
        ArgumentNullException.ThrowIfNull(comm);
        comm.CheckAddress(peer, tag);
        if (pages.IsEmpty)
        {
            return;
        }
        using var endpoint = new HandleLease(comm);
        using var pool = new HandleLease(Handle);
        fixed (int* p = pages)
        {
            NativeStatus.Check(NativeMethods.inf_page_pool_recv_pages((inf_comm*)endpoint.Value, peer, tag,
                (inf_page_pool*)pool.Value, p, pages.Length));
        }
    }

    public void Dispose() => Handle.Dispose();
}
