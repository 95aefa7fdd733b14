using System.Runtime.InteropServices;

namespace Infinite.Native;

/// <summary>
/// Holds a reference on a SafeHandle for the length of one native call, so a concurrent Dispose
/// cannot free the native object under the call; a disposed handle throws ObjectDisposedException.
/// </summary>
internal ref struct HandleLease
{
    private readonly SafeHandle _handle;
    private bool _added;

    public HandleLease(SafeHandle handle)
    {
        _handle = handle;
        _added = false;
        handle.DangerousAddRef(ref _added);
    }

    public readonly nint Value => _handle.DangerousGetHandle();

    public void Dispose()
    {
        if (_added)
        {
            _added = false;
            _handle.DangerousRelease();
        }
    }
}
