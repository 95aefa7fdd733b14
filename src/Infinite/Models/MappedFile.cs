using System.IO.MemoryMappedFiles;

namespace Infinite.Models;

/// <summary>A whole file mapped read-only; the pointer stays valid until <see cref="Dispose"/>.</summary>
internal sealed unsafe class MappedFile : IDisposable
{
    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;
    private byte* _base;

    public string Path { get; }
    public long Length { get; }

    public MappedFile(string path)
    {
        Path = path;
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            Length = stream.Length;
            if (Length == 0) return;   // an empty file cannot be mapped; readers report it as too short
            _map = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
            _view = _map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* p = null;
            _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            _base = p + _view.PointerOffset;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Dispose();
            throw new ModelFormatException($"{System.IO.Path.GetFileName(path)}: cannot map the file: {e.Message}", e);
        }
    }

    public byte* Base => _base != null || Length == 0 ? _base : throw new ObjectDisposedException(Path);

    public void Dispose()
    {
        if (_base != null)
        {
            _view!.SafeMemoryMappedViewHandle.ReleasePointer();
            _base = null;
        }
        _view?.Dispose();
        _map?.Dispose();
    }
}
