namespace Infinite.Runtime;

/// <summary>
/// One dedicated, long-lived thread per instance. A distributed step blocks every instance inside a native call
/// for the whole step (each waits on its peers' messages), so running them on the thread pool could starve it or,
/// with fewer pool threads than instances, deadlock; fixed threads also keep each instance's native thread-local
/// state (error messages, scratch) on one thread. <see cref="Run"/> hands each thread its work and waits for all.
/// </summary>
internal sealed class InstanceThreads : IDisposable
{
    private readonly Worker[] _workers;
    private bool _disposed;

    public InstanceThreads(int count, string name)
    {
        _workers = new Worker[count];
        for (int i = 0; i < count; i++)
        {
            _workers[i] = new Worker($"{name} {i}");
        }
    }

    public int Count => _workers.Length;

    /// <summary>Runs <paramref name="work"/>[i] on thread i (null: thread i sits this one out), concurrently, and
    /// returns each one's exception (null when it succeeded or had nothing to do). Not reentrant: one caller.</summary>
    public Exception?[] Run(IReadOnlyList<Action?> work)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (work.Count != _workers.Length)
        {
            throw new ArgumentException($"{work.Count} work items for {_workers.Length} threads", nameof(work));
        }
        int posted = work.Count(w => w is not null);
        var errors = new Exception?[_workers.Length];
        if (posted == 0)
        {
            return errors;
        }
        using var done = new CountdownEvent(posted);
        for (int i = 0; i < _workers.Length; i++)
        {
            if (work[i] is { } action)
            {
                _workers[i].Post(action, done);
            }
        }
        done.Wait();
        for (int i = 0; i < _workers.Length; i++)
        {
            errors[i] = work[i] is null ? null : _workers[i].TakeError();
        }
        return errors;
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        foreach (Worker worker in _workers)
        {
            worker.Dispose();
        }
    }

    private sealed class Worker : IDisposable
    {
        private readonly Thread _thread;
        private readonly SemaphoreSlim _posted = new(0);
        private Action? _work;
        private CountdownEvent? _done;
        private Exception? _error;
        private volatile bool _stopping;

        public Worker(string name)
        {
            _thread = new Thread(Loop) { IsBackground = true, Name = name };
            _thread.Start();
        }

        public void Post(Action work, CountdownEvent done)
        {
            _work = work;
            _done = done;
            _error = null;
            _posted.Release();
        }

        /// <summary>Read after the countdown completed, which orders it after the worker's write.</summary>
        public Exception? TakeError()
        {
            Exception? error = _error;
            _error = null;
            return error;
        }

        public void Dispose()
        {
            _stopping = true;
            _posted.Release();
            _thread.Join();
            _posted.Dispose();
        }

        private void Loop()
        {
            while (true)
            {
                _posted.Wait();
                if (_stopping)
                {
                    return;
                }
                CountdownEvent done = _done!;
                try
                {
                    _work!();
                }
                catch (Exception e)
                {
                    _error = e;
                }
                finally
                {
                    _work = null;
                    _done = null;
                    done.Signal();
                }
            }
        }
    }
}
