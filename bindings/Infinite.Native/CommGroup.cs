using System.Runtime.InteropServices;

namespace Infinite.Native;

/// <summary>
/// The shared state of the instances of one process (<c>inf_comm_group</c>): each instance takes its endpoint
/// with <see cref="Communicator.CreateInProcess"/>. Endpoints keep the group alive (<c>DangerousAddRef</c>), so
/// disposing the group while instances still talk is safe: it goes when its last endpoint goes.
/// </summary>
public sealed class CommGroup : SafeHandle
{
    private static long _released;

    private CommGroup() : base(0, ownsHandle: true)
    {
    }

    public override bool IsInvalid => handle == 0;

    /// <summary>Instances in the group; ranks are 0 .. Size-1.</summary>
    public int Size { get; private set; }

    /// <summary>How many group handles this process has released (for leak and double-free tests).</summary>
    internal static long ReleasedCount => Interlocked.Read(ref _released);

    /// <summary>Creates a group of <paramref name="size"/> in-process instances.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="size"/> is outside 1 .. 1024.</exception>
    public static unsafe CommGroup Create(int size)
    {
        if (size is < 1 or > 1024)
        {
            throw new ArgumentOutOfRangeException(nameof(size), size, "a communicator group has 1 to 1024 instances");
        }
        var result = new CommGroup { Size = size };
        inf_comm_group* group;
        NativeStatus.Check(NativeMethods.inf_comm_group_create(size, &group));
        result.SetHandle((nint)group);
        return result;
    }

    protected override unsafe bool ReleaseHandle()
    {
        Interlocked.Increment(ref _released);
        return NativeMethods.inf_comm_group_destroy((inf_comm_group*)handle) == InfiniteStatus.Ok;
    }
}
