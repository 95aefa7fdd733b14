namespace Infinite.Simulation;

/// <summary>Nearest-rank percentiles (the value below which p% of the samples lie; NaN for no samples).</summary>
public static class Percentiles
{
    public static double Of(IEnumerable<double> values, double percent)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (percent is < 0 or > 100 || double.IsNaN(percent))
            throw new ArgumentOutOfRangeException(nameof(percent), percent, "A percentile is between 0 and 100.");
        double[] sorted = values.Where(v => !double.IsNaN(v)).Order().ToArray();
        if (sorted.Length == 0)
            return double.NaN;
        int rank = (int)Math.Ceiling(percent / 100.0 * sorted.Length);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Length - 1)];
    }
}
