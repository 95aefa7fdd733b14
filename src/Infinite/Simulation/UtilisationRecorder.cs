namespace Infinite.Simulation;

/// <summary>
/// KV utilisation over a run, at bounded memory: one sample per step completion until <c>max</c> samples, then every
/// other one is dropped and only every second (fourth, ...) step is kept, so a run of millions of steps still plots
/// evenly. Forced samples (the start and the end) are always kept.
/// </summary>
internal sealed class UtilisationRecorder(int max)
{
    private readonly List<UtilisationSample> _samples = [];
    private long _offered;
    private int _stride = 1;

    public IReadOnlyList<UtilisationSample> Samples => _samples;

    public void Add(double seconds, double used, int running, int queued, bool force)
    {
        if (!force && _offered++ % _stride != 0)
            return;
        if (_samples.Count >= max)
        {
            int keep = 0;
            for (int k = 0; k < _samples.Count; k += 2)
                _samples[keep++] = _samples[k];
            _samples.RemoveRange(keep, _samples.Count - keep);
            _stride *= 2;
        }
        _samples.Add(new UtilisationSample(seconds, used, running, queued));
    }
}
