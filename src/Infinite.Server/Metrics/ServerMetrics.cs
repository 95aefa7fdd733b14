using System.Diagnostics.Metrics;
using System.Globalization;
using Infinite.Engine;

namespace Infinite.Server.Metrics;

/// <summary>
/// The server's instruments on <c>Meter("Infinite")</c>. Names follow OpenTelemetry style ("infinite.requests");
/// <see cref="PrometheusExporter"/> turns them into Prometheus names (infinite_requests_total). Each server owns its
/// meter instance, so two servers in one process never mix their series.
/// </summary>
internal sealed class ServerMetrics : IDisposable
{
    public const string MeterName = "Infinite";

    private static readonly double[] TtftBuckets =
        [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

    private static readonly double[] InterTokenBuckets =
        [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

    private static readonly double[] DurationBuckets =
        [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

    private static readonly KeyValuePair<string, object?> Instance0 = new("instance", "0");

    private readonly InferenceEngine _engine;

    public ServerMetrics(InferenceEngine engine)
    {
        _engine = engine;
        Meter = new Meter(MeterName);
        Requests = Meter.CreateCounter<long>("infinite.requests", null, "HTTP requests by endpoint and status.");
        PromptTokens = Meter.CreateCounter<long>("infinite.prompt_tokens", null, "Prompt tokens of generation requests.");
        CompletionTokens = Meter.CreateCounter<long>("infinite.completion_tokens", null, "Tokens generated.");
        TimeToFirstToken = Meter.CreateHistogram("infinite.time_to_first_token", "s",
            "From request arrival to the first generated token.", null,
            new InstrumentAdvice<double> { HistogramBucketBoundaries = TtftBuckets });
        InterTokenLatency = Meter.CreateHistogram("infinite.inter_token_latency", "s",
            "Between consecutive generated tokens of one request.", null,
            new InstrumentAdvice<double> { HistogramBucketBoundaries = InterTokenBuckets });
        RequestDuration = Meter.CreateHistogram("infinite.request_duration", "s",
            "Whole HTTP request, by endpoint.", null,
            new InstrumentAdvice<double> { HistogramBucketBoundaries = DurationBuckets });
        Meter.CreateObservableGauge("infinite.queue_depth", () => _engine.Stats.QueuedRequests, null,
            "Requests waiting for admission to the running batch.");
        Meter.CreateObservableGauge("infinite.running_requests", () => _engine.Stats.RunningRequests, null,
            "Requests in the running batch.");
        Meter.CreateObservableGauge("infinite.kv_pages_used", () => PerInstance(p => p.Used),
            null, "KV cache pages in use, per instance (own + lent).");
        Meter.CreateObservableGauge("infinite.kv_pages_free", () => PerInstance(p => p.Free),
            null, "KV cache pages free, per instance.");
        Meter.CreateObservableGauge("infinite.kv_pages_lent", () => PerInstance(p => p.Lent),
            null, "KV cache pages of an instance held by requests homed on other instances.");
        Meter.CreateObservableGauge("infinite.kv_pages_borrowed", () => PerInstance(p => p.Borrowed),
            null, "KV cache pages on other instances held by requests homed on this instance.");
        Meter.CreateObservableGauge("infinite.instance_failed", () => PerInstance(p => p.Failed ? 1 : 0),
            null, "1 for an instance marked failed (its requests were failed, it serves no more).");
        Exporter = new PrometheusExporter(Meter);
    }

    public Meter Meter { get; }
    public PrometheusExporter Exporter { get; }
    public Counter<long> Requests { get; }
    public Counter<long> PromptTokens { get; }
    public Counter<long> CompletionTokens { get; }
    public Histogram<double> TimeToFirstToken { get; }
    public Histogram<double> InterTokenLatency { get; }
    public Histogram<double> RequestDuration { get; }

    /// <summary>One measurement per instance of one consistent stats snapshot, tagged instance="i".</summary>
    private IEnumerable<Measurement<int>> PerInstance(Func<InstancePageStats, int> value)
    {
        EngineStats stats = _engine.Stats;
        if (stats.Instances.Count == 0)
            return [new Measurement<int>(0, Instance0)];
        return stats.Instances.Select(p => new Measurement<int>(value(p), new KeyValuePair<string, object?>("instance", p.Instance.ToString(CultureInfo.InvariantCulture))));
    }

    public void RecordRequest(string endpoint, int status, double seconds)
    {
        var endpointTag = new KeyValuePair<string, object?>("endpoint", endpoint);
        Requests.Add(1, endpointTag, new KeyValuePair<string, object?>("status", status));
        RequestDuration.Record(seconds, endpointTag);
    }

    public void Dispose()
    {
        Exporter.Dispose();
        Meter.Dispose();
    }
}
