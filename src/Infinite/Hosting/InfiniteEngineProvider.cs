namespace Infinite.Hosting;

/// <summary>
/// The engine that <see cref="InfiniteEngineHostedService"/> loads at host start, for any consumer (controllers,
/// background services, health checks). A singleton: every consumer shares one engine and its KV cache.
/// </summary>
public sealed class InfiniteEngineProvider : IAsyncDisposable
{
    private readonly TaskCompletionSource<InfiniteEngine> _engine = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Lock _gate = new();
    private int _unloaded;

    /// <summary>True once the model is loaded and until the host stops.</summary>
    public bool IsReady => _engine.Task.IsCompletedSuccessfully && Volatile.Read(ref _unloaded) == 0;

    /// <summary>Why loading failed (the exception <see cref="GetEngineAsync"/> rethrows); null while loading or after success.</summary>
    public Exception? LoadFailure => _engine.Task.Exception?.InnerException
                                     ?? (_engine.Task.IsCanceled ? new OperationCanceledException("the model load was cancelled") : null);

    /// <summary>The loaded engine, waiting for the load when it is still running. Throws the load's own exception
    /// when loading failed, and <see cref="ObjectDisposedException"/> once the host has stopped.</summary>
    public async Task<InfiniteEngine> GetEngineAsync(CancellationToken cancellationToken = default)
    {
        InfiniteEngine engine = await _engine.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _unloaded) != 0, this);
        return engine;
    }

    /// <summary>Publishes the loaded engine; false when the provider was disposed during the load (the caller then
    /// owns the engine and disposes it).</summary>
    internal bool TrySetLoaded(InfiniteEngine engine)
    {
        lock (_gate) // against a concurrent DisposeAsync, which must either see the engine or refuse it
        {
            if (_unloaded != 0)
            {
                return false;
            }
            _engine.SetResult(engine);
            return true;
        }
    }

    internal void SetFailed(Exception failure)
    {
        if (failure is OperationCanceledException)
        {
            _engine.TrySetCanceled();
        }
        else
        {
            _engine.TrySetException(failure);
        }
    }

    /// <summary>Disposes the engine once (the hosted service on stop, or the container on dispose, whichever is first).</summary>
    public async ValueTask DisposeAsync()
    {
        InfiniteEngine? loaded;
        lock (_gate)
        {
            if (_unloaded != 0)
            {
                return;
            }
            Volatile.Write(ref _unloaded, 1);
            loaded = _engine.Task.IsCompletedSuccessfully ? _engine.Task.Result : null;
            // Consumers still waiting for a load that will now be refused get an answer instead of waiting forever.
            _engine.TrySetException(new ObjectDisposedException(nameof(InfiniteEngineProvider),
                "the host stopped before the model finished loading"));
        }
        if (loaded is not null)
        {
            await loaded.DisposeAsync().ConfigureAwait(false);
        }
    }
}
