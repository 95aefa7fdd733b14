namespace Infinite.Native;

/// <summary>
/// LServe's reusable selector: a selection is computed at a request's decode steps 0, R, 2R, ... and
/// reused in between, since the pages a query needs change slowly from one token to the next.
/// Keyed by (request, layer); forget a request when it ends.
/// </summary>
public sealed class ReusableSelection
{
    private readonly Dictionary<(long Request, int Layer), (long Step, PageSelection Selection)> _stored = [];

    public ReusableSelection(int interval)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(interval);
        Interval = interval;
    }

    /// <summary>Decode steps one selection serves.</summary>
    public int Interval { get; }

    /// <summary>Selections computed so far (for measuring the selector's share).</summary>
    public long Computed { get; private set; }

    /// <summary>The selection for <paramref name="request"/>'s layer at decode step <paramref name="step"/>:
    /// the stored one while step is before its next recompute step, otherwise a fresh one from
    /// <paramref name="compute"/>, stored for the next interval.</summary>
    public PageSelection Get(long request, int layer, long step, Func<PageSelection> compute)
    {
        ArgumentNullException.ThrowIfNull(compute);
        if (_stored.TryGetValue((request, layer), out var stored) && step >= stored.Step && step < stored.Step + Interval && step % Interval != 0)
        {
            return stored.Selection;
        }
        PageSelection fresh = compute();
        Computed++;
        _stored[(request, layer)] = (step - step % Interval, fresh);
        return fresh;
    }

    /// <summary>Drops every stored selection of <paramref name="request"/>.</summary>
    public void Forget(long request)
    {
        foreach (var key in _stored.Keys.Where(k => k.Request == request).ToList())
        {
            _stored.Remove(key);
        }
    }
}
