using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;

namespace Infinite.Server.Metrics;

/// <summary>
/// Aggregates one meter's measurements with a <see cref="MeterListener"/> and renders them in the Prometheus text
/// exposition format 0.0.4. Counters sum, gauges keep the last value (observable ones are read at scrape time),
/// histograms count into the buckets of their <see cref="InstrumentAdvice{T}"/>.
/// </summary>
internal sealed class PrometheusExporter : IDisposable
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    private static readonly double[] DefaultBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    private readonly MeterListener _listener = new();
    private readonly List<InstrumentSeries> _instruments = [];
    private readonly object _scrapeGate = new();

    public PrometheusExporter(Meter meter)
    {
        ArgumentNullException.ThrowIfNull(meter);
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (!ReferenceEquals(instrument.Meter, meter))
                return;
            var series = new InstrumentSeries(instrument);
            lock (_instruments)
                _instruments.Add(series);
            listener.EnableMeasurementEvents(instrument, series);
        };
        _listener.SetMeasurementEventCallback<long>((_, value, tags, state) => ((InstrumentSeries)state!).Record(value, tags));
        _listener.SetMeasurementEventCallback<int>((_, value, tags, state) => ((InstrumentSeries)state!).Record(value, tags));
        _listener.SetMeasurementEventCallback<double>((_, value, tags, state) => ((InstrumentSeries)state!).Record(value, tags));
        _listener.Start();
    }

    /// <summary>The exposition text of every instrument, observable ones read now.</summary>
    public string Scrape()
    {
        lock (_scrapeGate)
        {
            InstrumentSeries[] instruments;
            lock (_instruments)
                instruments = [.. _instruments.OrderBy(i => i.Name, StringComparer.Ordinal)];
            foreach (InstrumentSeries s in instruments.Where(s => s.IsObservable))
                s.Clear();
            _listener.RecordObservableInstruments();
            var text = new StringBuilder();
            foreach (InstrumentSeries s in instruments)
                s.Render(text);
            return text.ToString();
        }
    }

    public void Dispose() => _listener.Dispose();

    /// <summary>Prometheus metric names allow [a-zA-Z_:][a-zA-Z0-9_:]*.</summary>
    internal static string SanitizeName(string name)
    {
        var sb = new StringBuilder(name.Length);
        foreach (char c in name)
            sb.Append(char.IsAsciiLetterOrDigit(c) || c is '_' or ':' ? c : '_');
        if (sb.Length == 0 || char.IsAsciiDigit(sb[0]))
            sb.Insert(0, '_');
        return sb.ToString();
    }

    internal static string FormatNumber(double value) => value switch
    {
        double.PositiveInfinity => "+Inf",
        double.NegativeInfinity => "-Inf",
        double.NaN => "NaN",
        _ => value.ToString("R", CultureInfo.InvariantCulture),
    };

    internal static string EscapeLabelValue(string value)
        => value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal)
            .Replace("\n", "\\n", StringComparison.Ordinal);

    private static string EscapeHelp(string value)
        => value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

    /// <summary>Labels sorted by name, rendered <c>a="x",b="y"</c>; the key of a series.</summary>
    private static string LabelKey(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (tags.IsEmpty)
            return "";
        var pairs = new KeyValuePair<string, object?>[tags.Length];
        tags.CopyTo(pairs);
        Array.Sort(pairs, (a, b) => string.CompareOrdinal(a.Key, b.Key));
        var sb = new StringBuilder();
        foreach (var (key, value) in pairs)
        {
            if (sb.Length > 0)
                sb.Append(',');
            string text = Convert.ToString(value, CultureInfo.InvariantCulture) ?? "";
            sb.Append(SanitizeName(key)).Append("=\"").Append(EscapeLabelValue(text)).Append('"');
        }
        return sb.ToString();
    }

    private enum Kind { Counter, Gauge, Histogram }

    /// <summary>The series of one instrument, keyed by their label set.</summary>
    private sealed class InstrumentSeries
    {
        private readonly Lock _lock = new();
        private readonly Dictionary<string, double> _values = new(StringComparer.Ordinal);
        private readonly Dictionary<string, HistogramData> _histograms = new(StringComparer.Ordinal);
        private readonly double[] _bounds = [];
        private readonly Kind _kind;
        private readonly string? _help;

        public InstrumentSeries(Instrument instrument)
        {
            Type type = instrument.GetType();
            Type definition = type.IsGenericType ? type.GetGenericTypeDefinition() : type;
            IsObservable = instrument.IsObservable;
            _kind = definition == typeof(Counter<>) || definition == typeof(ObservableCounter<>) ? Kind.Counter
                : definition == typeof(Histogram<>) ? Kind.Histogram
                : Kind.Gauge;
            string name = SanitizeName(instrument.Name);
            if (instrument.Unit == "s" && !name.EndsWith("_seconds", StringComparison.Ordinal))
                name += "_seconds";
            if (_kind == Kind.Counter)
                name += "_total";
            Name = name;
            _help = instrument.Description;
            if (_kind == Kind.Histogram)
            {
                IReadOnlyList<double>? advised = (instrument as Histogram<double>)?.Advice?.HistogramBucketBoundaries;
                _bounds = [.. (advised is { Count: > 0 } ? advised : DefaultBuckets).Order()];
            }
        }

        public string Name { get; }
        public bool IsObservable { get; }

        public void Clear()
        {
            lock (_lock)
                _values.Clear();
        }

        public void Record(double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            string key = LabelKey(tags);
            lock (_lock)
            {
                switch (_kind)
                {
                    case Kind.Counter when !IsObservable:
                        _values[key] = _values.GetValueOrDefault(key) + value;
                        break;
                    case Kind.Histogram:
                        if (!_histograms.TryGetValue(key, out HistogramData? h))
                            _histograms[key] = h = new HistogramData(_bounds.Length + 1);
                        int bucket = Array.BinarySearch(_bounds, value);
                        // le buckets are inclusive: a value equal to a bound belongs to that bound's bucket.
                        h.Counts[bucket >= 0 ? bucket : ~bucket]++;
                        h.Sum += value;
                        h.Count++;
                        break;
                    default:
                        _values[key] = value;
                        break;
                }
            }
        }

        public void Render(StringBuilder text)
        {
            lock (_lock)
            {
                if (!string.IsNullOrEmpty(_help))
                    text.Append("# HELP ").Append(Name).Append(' ').Append(EscapeHelp(_help)).Append('\n');
                text.Append("# TYPE ").Append(Name).Append(' ').Append(_kind switch
                {
                    Kind.Counter => "counter",
                    Kind.Histogram => "histogram",
                    _ => "gauge",
                }).Append('\n');
                foreach (var (key, value) in _values.OrderBy(p => p.Key, StringComparer.Ordinal))
                    Sample(text, Name, key, null, value);
                foreach (var (key, h) in _histograms.OrderBy(p => p.Key, StringComparer.Ordinal))
                {
                    long cumulative = 0;
                    for (int i = 0; i <= _bounds.Length; i++)
                    {
                        cumulative += h.Counts[i];
                        string le = i < _bounds.Length ? FormatNumber(_bounds[i]) : "+Inf";
                        Sample(text, Name + "_bucket", key, $"le=\"{le}\"", cumulative);
                    }
                    Sample(text, Name + "_sum", key, null, h.Sum);
                    Sample(text, Name + "_count", key, null, h.Count);
                }
            }
        }

        private static void Sample(StringBuilder text, string name, string labels, string? extra, double value)
        {
            text.Append(name);
            if (labels.Length > 0 || extra is not null)
            {
                text.Append('{').Append(labels);
                if (extra is not null)
                    text.Append(labels.Length > 0 ? "," : "").Append(extra);
                text.Append('}');
            }
            text.Append(' ').Append(FormatNumber(value)).Append('\n');
        }
    }

    private sealed class HistogramData(int buckets)
    {
        public long[] Counts { get; } = new long[buckets];
        public double Sum { get; set; }
        public long Count { get; set; }
    }
}
