using System.Net;

namespace Infinite.Server.Tests;

/// <summary>/metrics after traffic: the instruments exist, move with the traffic and parse as exposition format.</summary>
public sealed class MetricsTests
{
    private static async Task<List<PrometheusText.Sample>> ScrapeAsync(TestServer server)
    {
        using HttpResponseMessage response = await server.Http.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/plain; version=0.0.4; charset=utf-8", response.Content.Headers.ContentType?.ToString());
        return PrometheusText.Parse(await response.Content.ReadAsStringAsync());
    }

    private static double Value(List<PrometheusText.Sample> samples, string name, params (string Key, string Value)[] labels)
        => samples.Where(s => s.Name == name && labels.All(l => s.Labels.GetValueOrDefault(l.Key) == l.Value)).Sum(s => s.Value);

    [Fact]
    public async Task Metrics_count_requests_tokens_and_latencies_and_show_the_kv_cache()
    {
        await using TestServer server = await TestServer.StartAsync();
        string body = $$"""{"model": "{{server.ModelId}}", "prompt": "The mill", "max_tokens": 5, "ignore_eos": true}""";
        for (int i = 0; i < 3; i++)
            Assert.Equal(HttpStatusCode.OK, (await server.Http.PostAsync("/v1/completions", body)).Status);
        using (HttpResponseMessage stream = await server.Http.PostStreamAsync("/v1/chat/completions",
                   $$"""{"model": "{{server.ModelId}}", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, "ignore_eos": true, "stream": true}"""))
            await HttpHelpers.ReadChunksAsync(stream);
        Assert.Equal(HttpStatusCode.NotFound, (await server.Http.PostAsync("/v1/completions", body.Replace(server.ModelId, "other", StringComparison.Ordinal))).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await server.Http.PostAsync("/v1/completions", "{")).Status);

        List<PrometheusText.Sample> samples = await ScrapeAsync(server);
        Assert.Equal(3, Value(samples, "infinite_requests_total", ("endpoint", "/v1/completions"), ("status", "200")));
        Assert.Equal(1, Value(samples, "infinite_requests_total", ("endpoint", "/v1/chat/completions"), ("status", "200")));
        Assert.Equal(1, Value(samples, "infinite_requests_total", ("endpoint", "/v1/completions"), ("status", "404")));
        Assert.Equal(1, Value(samples, "infinite_requests_total", ("endpoint", "/v1/completions"), ("status", "400")));
        Assert.Equal(3 * 5 + 4, Value(samples, "infinite_completion_tokens_total"));
        int prompt = server.Engine.Tokenizer.Encode("The mill").Length;
        Assert.True(Value(samples, "infinite_prompt_tokens_total") > 3 * prompt);
        Assert.Equal(4, Value(samples, "infinite_time_to_first_token_seconds_count"));
        Assert.Equal(3 * 4 + 3, Value(samples, "infinite_inter_token_latency_seconds_count"));
        Assert.True(Value(samples, "infinite_time_to_first_token_seconds_sum") > 0);
        Assert.Equal(6, Value(samples, "infinite_request_duration_seconds_count"));

        var stats = server.Engine.Engine.Stats;
        Assert.Equal(0, Value(samples, "infinite_queue_depth"));
        Assert.Equal(0, Value(samples, "infinite_running_requests"));
        Assert.Equal(0, Value(samples, "infinite_kv_pages_used", ("instance", "0")));
        Assert.Equal(stats.PagesTotal, Value(samples, "infinite_kv_pages_free", ("instance", "0")));

        // A second scrape counts the first one and changes nothing else.
        List<PrometheusText.Sample> again = await ScrapeAsync(server);
        Assert.Equal(1, Value(again, "infinite_requests_total", ("endpoint", "/metrics"), ("status", "200")));
        Assert.Equal(3 * 5 + 4, Value(again, "infinite_completion_tokens_total"));
    }

    [Fact]
    public async Task Gauges_show_a_running_request_and_its_pages()
    {
        await using TestServer server = await TestServer.StartAsync();
        using var cts = new CancellationTokenSource();
        using HttpResponseMessage stream = await server.Http.PostStreamAsync("/v1/completions",
            $$"""{"model": "{{server.ModelId}}", "prompt": "The mill", "max_tokens": 2000, "ignore_eos": true, "stream": true}""", cts.Token);
        List<PrometheusText.Sample> samples = await ScrapeAsync(server);
        Assert.Equal(1, Value(samples, "infinite_running_requests"));
        Assert.True(Value(samples, "infinite_kv_pages_used", ("instance", "0")) > 0);
        await cts.CancelAsync();
    }

    [Fact]
    public void Label_values_and_names_are_escaped_and_sanitized()
    {
        Assert.Equal("a\\\\b\\\"c\\nd", Metrics.PrometheusExporter.EscapeLabelValue("a\\b\"c\nd"));
        Assert.Equal("infinite_time_to_first_token", Metrics.PrometheusExporter.SanitizeName("infinite.time-to-first token"));
        Assert.Equal("+Inf", Metrics.PrometheusExporter.FormatNumber(double.PositiveInfinity));
        Assert.Equal("0.25", Metrics.PrometheusExporter.FormatNumber(0.25));
    }
}
