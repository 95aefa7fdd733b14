using System.Runtime.InteropServices;

namespace Infinite.Native;

/// <summary>
/// A native object that lives on a device (a buffer, a page pool). It keeps its parent
/// <see cref="DeviceHandle"/> alive (<c>DangerousAddRef</c>) until the object is freed, so device
/// memory is never freed without its device, even when the finalizer thread releases the two in
/// either order.
/// </summary>
public abstract class DeviceChildHandle : SafeHandle
{
    private DeviceHandle? _parent;

    private protected DeviceChildHandle() : base(0, ownsHandle: true)
    {
    }

    public override bool IsInvalid => handle == 0;

    /// <summary>Creates the native object with <paramref name="create"/> (given the parent's native
    /// handle, returning the child's) while holding a reference on the parent, which the child keeps.</summary>
    private protected void Create(DeviceHandle device, Func<nint, nint> create)
    {
        bool added = false;
        try
        {
            device.DangerousAddRef(ref added);
            nint child = create(device.DangerousGetHandle());
            _parent = device;
            SetHandle(child);
            added = false; // the reference now belongs to this handle, released in ReleaseHandle
        }
        finally
        {
            if (added)
            {
                device.DangerousRelease();
            }
        }
    }

    /// <summary>Frees the native object; true when the library accepted the handle.</summary>
    private protected abstract bool Destroy(nint native);

    protected sealed override bool ReleaseHandle()
    {
        bool ok = Destroy(handle);
        _parent?.DangerousRelease();
        _parent = null;
        return ok;
    }
}
