using System.Runtime.InteropServices;

namespace Infinite.Native;

/// <summary>
/// One instance's endpoint in a group of instances that exchange queries, partial attention results and KV pages
/// (<c>inf_comm</c>). Thread-safe: sends and receives may come from several threads. Sends never wait for the
/// receiver; a receive waits at most <see cref="Timeout"/>, then throws <see cref="CommunicationTimeoutException"/>;
/// a peer whose endpoint is gone makes it throw <see cref="PeerFailedException"/> at once. Disposing the endpoint
/// is what tells the peers that this rank is gone. An in-process endpoint keeps its <see cref="CommGroup"/> alive,
/// a NCCL one its <see cref="Device"/> (both with <c>DangerousAddRef</c>, released after the endpoint is freed).
/// </summary>
public sealed class Communicator : SafeHandle
{
    /// <summary>Tags callers may use; tags from here to <see cref="MaxTag"/> belong to the library.</summary>
    public const int ReservedTagBase = 16384;

    /// <summary>The largest tag the C ABI accepts.</summary>
    public const int MaxTag = 32767;

    private static long _released;
    private SafeHandle? _parent;

    private Communicator() : base(0, ownsHandle: true)
    {
    }

    public override bool IsInvalid => handle == 0;

    public CommKind Kind { get; private set; }

    /// <summary>This endpoint's rank, 0 .. Size-1.</summary>
    public int Rank { get; private set; }

    /// <summary>Endpoints in the group.</summary>
    public int Size { get; private set; }

    /// <summary>How many communicator handles this process has released (for leak and double-free tests).</summary>
    internal static long ReleasedCount => Interlocked.Read(ref _released);

    /// <summary>The endpoint of <paramref name="rank"/> in <paramref name="group"/> (each rank at most once while it
    /// lives). The endpoint holds a reference on the group until it is released.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="rank"/> is outside the group.</exception>
    /// <exception cref="InfiniteException">The rank already has a live endpoint (the message says so).</exception>
    public static unsafe Communicator CreateInProcess(CommGroup group, int rank)
    {
        ArgumentNullException.ThrowIfNull(group);
        if ((uint)rank >= (uint)group.Size)
        {
            throw new ArgumentOutOfRangeException(nameof(rank), rank, $"the group has ranks 0 .. {group.Size - 1}");
        }
        return CreateChild(group, parent =>
        {
            inf_comm* comm;
            NativeStatus.Check(NativeMethods.inf_comm_create_inproc((inf_comm_group*)parent, rank, &comm));
            return (nint)comm;
        });
    }

    /// <summary>The endpoint of this process under mpirun (MPI_COMM_WORLD; MPI is initialised here when it is not
    /// yet, and finalised when the last MPI endpoint is released).</summary>
    /// <exception cref="InfiniteException"><see cref="InfiniteStatus.BackendUnavailable"/> naming the library and the
    /// reason when the MPI plug-in or libmpi cannot be loaded.</exception>
    public static unsafe Communicator CreateMpi()
    {
        var result = new Communicator();
        inf_comm* comm;
        NativeStatus.Check(NativeMethods.inf_comm_create_mpi(&comm));
        result.SetHandle((nint)comm);
        result.ReadIdentity();
        return result;
    }

    /// <summary>A NCCL communicator over the ranks of <paramref name="bootstrap"/> (rank 0 makes the unique id and
    /// sends it over bootstrap) for buffers on <paramref name="device"/>, which it keeps alive. Every rank calls
    /// this at the same time.</summary>
    /// <exception cref="InfiniteException"><see cref="InfiniteStatus.BackendUnavailable"/> when libnccl.so.2 or the
    /// CUDA backend cannot be loaded.</exception>
    public static unsafe Communicator CreateNccl(Communicator bootstrap, Device device)
    {
        ArgumentNullException.ThrowIfNull(bootstrap);
        ArgumentNullException.ThrowIfNull(device);
        using var boot = new HandleLease(bootstrap);
        nint bootHandle = boot.Value;
        return CreateChild(device.Handle, parent =>
        {
            inf_comm* comm;
            NativeStatus.Check(NativeMethods.inf_comm_create_nccl((inf_comm*)bootHandle, (inf_device*)parent, &comm));
            return (nint)comm;
        });
    }

    /// <summary>Kind, rank, size, timeout and the traffic so far.</summary>
    public unsafe CommInfo Info
    {
        get
        {
            using var comm = new HandleLease(this);
            var info = new inf_comm_info { size = (uint)sizeof(inf_comm_info) };
            NativeStatus.Check(NativeMethods.inf_comm_get_info((inf_comm*)comm.Value, &info));
            return CommInfo.FromNative(info);
        }
    }

    /// <summary>How long a receive (and a send's wait for buffer space) waits before it throws
    /// <see cref="CommunicationTimeoutException"/>; whole milliseconds, at least one (native default 30 s).</summary>
    public unsafe TimeSpan Timeout
    {
        get => Info.Timeout;
        set
        {
            double ms = Math.Ceiling(value.TotalMilliseconds);
            if (ms < 1 || ms > int.MaxValue)
            {
                throw new ArgumentOutOfRangeException(nameof(value), value, $"a communicator timeout is 1 ms to {int.MaxValue} ms");
            }
            using var comm = new HandleLease(this);
            NativeStatus.Check(NativeMethods.inf_comm_set_timeout((inf_comm*)comm.Value, (int)ms));
        }
    }

    /// <summary>Sends <paramref name="data"/> (may be empty) to <paramref name="peer"/> with <paramref name="tag"/>;
    /// returns once the data may be reused, without waiting for the receiver.</summary>
    public unsafe void Send(int peer, int tag, ReadOnlySpan<byte> data)
    {
        CheckAddress(peer, tag);
        using var comm = new HandleLease(this);
        fixed (byte* p = data)
        {
            NativeStatus.Check(NativeMethods.inf_comm_send((inf_comm*)comm.Value, peer, tag, p, (ulong)data.Length));
        }
    }

    /// <summary>Receives the next message from (<paramref name="peer"/>, <paramref name="tag"/>) into
    /// <paramref name="buffer"/> and returns its length. A message longer than the buffer throws
    /// (<see cref="InfiniteStatus.OutOfRange"/>, naming both lengths) and stays queued: size it with <see cref="Probe"/>.</summary>
    public unsafe int Receive(int peer, int tag, Span<byte> buffer)
    {
        CheckAddress(peer, tag);
        using var comm = new HandleLease(this);
        ulong length;
        byte none = 0;
        fixed (byte* p = buffer)
        {
            NativeStatus.Check(NativeMethods.inf_comm_recv((inf_comm*)comm.Value, peer, tag, p == null ? &none : p,
                (ulong)buffer.Length, &length));
        }
        return checked((int)length);
    }

    /// <summary>Receives the next whole message from (<paramref name="peer"/>, <paramref name="tag"/>).</summary>
    public byte[] Receive(int peer, int tag)
    {
        long length = Probe(peer, tag);
        if (length > Array.MaxLength)
        {
            throw new InvalidOperationException($"a message of {length} bytes from peer {peer} does not fit one array");
        }
        var data = new byte[length];
        int received = Receive(peer, tag, data);
        return received == data.Length ? data : data[..received];
    }

    /// <summary>Waits (up to <see cref="Timeout"/>) for the next message from (<paramref name="peer"/>,
    /// <paramref name="tag"/>) and returns its length, leaving it queued.</summary>
    public unsafe long Probe(int peer, int tag)
    {
        CheckAddress(peer, tag);
        using var comm = new HandleLease(this);
        ulong length;
        NativeStatus.Check(NativeMethods.inf_comm_probe((inf_comm*)comm.Value, peer, tag, &length));
        return checked((long)length);
    }

    public override string ToString() => $"{Kind} communicator, rank {Rank} of {Size}";

    /// <summary>Checks what the managed side knows (the peer's range, the tag's) so a bad address names its
    /// argument before any native call.</summary>
    internal void CheckAddress(int peer, int tag)
    {
        if ((uint)peer >= (uint)Size)
        {
            throw new ArgumentOutOfRangeException(nameof(peer), peer, $"peers are ranks 0 .. {Size - 1}");
        }
        if ((uint)tag > MaxTag)
        {
            throw new ArgumentOutOfRangeException(nameof(tag), tag, $"tags are 0 .. {MaxTag} ({ReservedTagBase} and up are the library's)");
        }
    }

    protected override unsafe bool ReleaseHandle()
    {
        Interlocked.Increment(ref _released);
        bool ok = NativeMethods.inf_comm_destroy((inf_comm*)handle) == InfiniteStatus.Ok;
        _parent?.DangerousRelease();
        _parent = null;
        return ok;
    }

    // Creates the endpoint while holding a reference on its parent, which the endpoint then keeps
    // (the pattern of DeviceChildHandle, for a parent that is not a device).
    private static Communicator CreateChild(SafeHandle parent, Func<nint, nint> create)
    {
        var result = new Communicator();
        bool added = false;
        try
        {
            parent.DangerousAddRef(ref added);
            nint comm = create(parent.DangerousGetHandle());
            result._parent = parent;
            result.SetHandle(comm);
            added = false; // the reference now belongs to the endpoint, released in ReleaseHandle
        }
        finally
        {
            if (added)
            {
                parent.DangerousRelease();
            }
        }
        result.ReadIdentity();
        return result;
    }

    private unsafe void ReadIdentity()
    {
        try
        {
            var info = new inf_comm_info { size = (uint)sizeof(inf_comm_info) };
            NativeStatus.Check(NativeMethods.inf_comm_get_info((inf_comm*)handle, &info));
            Kind = (CommKind)(int)info.kind;
            Rank = info.rank;
            Size = info.group_size;
        }
        catch
        {
            Dispose();
            throw;
        }
    }
}
