using System.Diagnostics;
using Infinite.Benchmarks;
using Infinite.Engine;
using Infinite.Runtime;

namespace Infinite.Cli;

/// <summary>
/// Prefill and decode speed over several in-process instances (<c>bench --instances N</c>): every sequence's pages
/// are striped over all instances (entry e of sequence b on instance (b + e) mod N) and sequences are homed round
/// robin, so each step pays the full DistAttention exchange; compare with one instance to see its cost. Decode KV
/// is filled with random keys and values straight into each instance's pool, as <see cref="ModelBenchmark"/> does.
/// </summary>
internal sealed class DistributedBenchmark(DistributedExecutor executor, int seed = 1)
{
    private readonly Random _random = new(seed);

    public BenchResult Prefill(int context, int chunk)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(context, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(chunk, 1);
        int[] table = Tables(1, context)[0];
        int[] tokens = RandomTokens(context);
        var logits = new float[executor.Config.VocabSize];
        RunPrefill(tokens[..Math.Min(chunk, context)], table, chunk, logits); // warm-up
        long start = Stopwatch.GetTimestamp();
        RunPrefill(tokens, table, chunk, logits);
        double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        return new BenchResult("prefill", false, 1, context, context, seconds, context / seconds, seconds * 1000 / context, seconds * 1000);
    }

    public BenchResult Decode(int batch, int context, int steps)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batch, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(context, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(steps, 1);
        int[][] tables = Tables(batch, context + steps + 1);
        foreach (int[] table in tables)
        {
            FillSynthetic(table, context);
        }
        var logits = new float[batch * executor.Config.VocabSize];
        DecodeStep(tables, context, logits); // warm-up
        long start = Stopwatch.GetTimestamp();
        for (int i = 1; i <= steps; i++)
        {
            DecodeStep(tables, context + i, logits);
        }
        double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        double stepMs = seconds * 1000 / steps;
        return new BenchResult("decode", false, batch, context, batch * steps, seconds, batch * steps / seconds, stepMs / batch, stepMs);
    }

    private void RunPrefill(int[] tokens, int[] table, int chunk, float[] logits)
    {
        for (int start = 0; start < tokens.Length; start += chunk)
        {
            int n = Math.Min(chunk, tokens.Length - start), end = start + n;
            int pages = TablePages(end);
            executor.Step(new StepPlan
            {
                TokenIds = tokens[start..end],
                Positions = Enumerable.Range(start, n).ToArray(),
                QStarts = [0, n],
                KvLengths = [end],
                PageStarts = [0, pages],
                PageIds = table[..pages],
                LogitTokens = end == tokens.Length ? [n - 1] : [],
                Homes = [0],
            }, logits);
        }
    }

    private void DecodeStep(int[][] tables, int position, float[] logits)
    {
        int batch = tables.Length, used = TablePages(position + 1);
        var pageIds = new int[batch * used];
        var pageStarts = new int[batch + 1];
        for (int b = 0; b < batch; b++)
        {
            Array.Copy(tables[b], 0, pageIds, b * used, used);
            pageStarts[b + 1] = (b + 1) * used;
        }
        executor.Step(new StepPlan
        {
            TokenIds = RandomTokens(batch),
            Positions = Enumerable.Repeat(position, batch).ToArray(),
            QStarts = Enumerable.Range(0, batch + 1).ToArray(),
            KvLengths = Enumerable.Repeat(position + 1, batch).ToArray(),
            PageStarts = pageStarts,
            PageIds = pageIds,
            LogitTokens = Enumerable.Range(0, batch).ToArray(),
            Homes = Enumerable.Range(0, batch).Select(b => b % executor.Instances).ToArray(),
        }, logits);
    }

    private int TablePages(int tokens) => (tokens + executor.PageSize - 1) / executor.PageSize;

    // Striped tables: entry e of sequence b on instance (b + e) mod N, local pages handed out in order.
    private int[][] Tables(int batch, int tokens)
    {
        int n = executor.Instances, count = TablePages(tokens);
        var next = new int[n];
        var tables = new int[batch][];
        for (int b = 0; b < batch; b++)
        {
            tables[b] = new int[count];
            for (int e = 0; e < count; e++)
            {
                int instance = (b + e) % n;
                if (next[instance] >= executor.PagesPerInstance)
                {
                    throw new ArgumentException(
                        $"the benchmark needs more than the {executor.PagesPerInstance} KV pages of {executor.PageSize} tokens each instance has ({batch} sequences of {tokens} tokens over {n} instances): raise the KV memory");
                }
                tables[b][e] = instance * executor.PagesPerInstance + next[instance]++;
            }
        }
        return tables;
    }

    private int[] RandomTokens(int count)
    {
        var tokens = new int[count];
        for (int i = 0; i < count; i++)
        {
            tokens[i] = _random.Next(executor.Config.VocabSize);
        }
        return tokens;
    }

    private void FillSynthetic(int[] table, int tokens)
    {
        int pageSize = executor.PageSize, width = executor.Config.KvHeads * executor.Config.HeadDim;
        var k = new float[pageSize * width];
        var v = new float[pageSize * width];
        var slots = Enumerable.Range(0, pageSize).ToArray();
        var pages = new int[pageSize];
        for (int start = 0; start < tokens; start += pageSize)
        {
            int n = Math.Min(pageSize, tokens - start);
            for (int i = 0; i < k.Length; i++)
            {
                k[i] = (float)(_random.NextDouble() * 2 - 1);
                v[i] = (float)(_random.NextDouble() * 2 - 1);
            }
            int page = table[start / pageSize];
            var pool = ((LocalInstance)executor.Runners[page / executor.PagesPerInstance]).Pool;
            Array.Fill(pages, page % executor.PagesPerInstance);
            for (int layer = 0; layer < executor.Config.Layers; layer++)
            {
                pool.Append(layer, pages.AsSpan(0, n), slots.AsSpan(0, n), k.AsSpan(0, n * width), v.AsSpan(0, n * width));
            }
        }
    }
}
