using System.Diagnostics;
using Infinite.Engine;
using Infinite.Runtime;

namespace Infinite.Benchmarks;

/// <summary>One measured figure of <see cref="ModelBenchmark"/>.</summary>
/// <param name="Kind">"prefill" or "decode".</param>
/// <param name="MsPerToken">Decode: step time / batch; prefill: total time / prompt tokens.</param>
/// <param name="StepMs">Decode: mean time of one step (all sequences); prefill: time of the whole prompt.</param>
public sealed record BenchResult(string Kind, bool Sparse, int Batch, int Context, int Tokens, double Seconds,
    double TokensPerSecond, double MsPerToken, double StepMs);

/// <summary>
/// Prefill and decode speed of a model on its native executor, at set context lengths and batch sizes. Prefill
/// feeds a random prompt in chunks; decode fills each sequence's KV cache with random keys and values straight
/// into the page pool (prefilling 128K tokens per sequence would take minutes on a CPU) and then times decode
/// steps. Timing starts after one warm-up step.
/// </summary>
public sealed class ModelBenchmark(NativeExecutor executor, int seed = 1)
{
    private readonly Random _random = new(seed);

    /// <summary>Time to prefill one prompt of <paramref name="context"/> tokens in chunks of <paramref name="chunk"/>.</summary>
    public BenchResult Prefill(int context, int chunk, SparseOptions? sparse = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(context, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(chunk, 1);
        int[] pages = Pages(0, context);
        int[] tokens = RandomTokens(context);
        float[] logits = new float[executor.Config.VocabSize];
        RunPrefill(tokens[..Math.Min(chunk, context)], pages, chunk, sparse, logits); // warm-up (overwritten below)
        long start = Stopwatch.GetTimestamp();
        RunPrefill(tokens, pages, chunk, sparse, logits);
        double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        return new BenchResult("prefill", sparse is not null, 1, context, context, seconds, context / seconds,
            seconds * 1000 / context, seconds * 1000);
    }

    /// <summary>Mean time of <paramref name="steps"/> decode steps of <paramref name="batch"/> sequences whose
    /// KV caches hold <paramref name="context"/> synthetic tokens.</summary>
    public BenchResult Decode(int batch, int context, int steps, SparseOptions? sparse = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batch, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(context, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(steps, 1);
        if (sparse is not null && executor.SelectionSlots < batch)
        {
            throw new ArgumentException(
                $"sparse decode of batch {batch} needs {batch} selection slots; the executor has {executor.SelectionSlots}");
        }
        int[][] tables = new int[batch][];
        for (int b = 0; b < batch; b++)
        {
            tables[b] = Pages(b, context + steps + 1);
            FillSynthetic(tables[b], context);
        }
        float[] logits = new float[batch * executor.Config.VocabSize];
        int reuse = sparse?.ReuseInterval ?? 1;
        DecodeStep(tables, context, 0, reuse, sparse, logits); // warm-up: selects pages, touches the workspace
        long start = Stopwatch.GetTimestamp();
        for (int i = 1; i <= steps; i++)
        {
            DecodeStep(tables, context + i, i, reuse, sparse, logits);
        }
        double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        double stepMs = seconds * 1000 / steps;
        return new BenchResult("decode", sparse is not null, batch, context, batch * steps, seconds,
            batch * steps / seconds, stepMs / batch, stepMs);
    }

    private void RunPrefill(int[] tokens, int[] pages, int chunk, SparseOptions? sparse, float[] logits)
    {
        for (int start = 0; start < tokens.Length; start += chunk)
        {
            int n = Math.Min(chunk, tokens.Length - start);
            int end = start + n;
            var plan = new StepPlan
            {
                TokenIds = tokens[start..end],
                Positions = Enumerable.Range(start, n).ToArray(),
                QStarts = [0, n],
                KvLengths = [end],
                PageStarts = [0, TablePages(end)],
                PageIds = pages[..TablePages(end)],
                LogitTokens = end == tokens.Length ? [n - 1] : [],
                Sparse = SparseStepFor(sparse, 1, reselect: false),
            };
            executor.Step(plan, logits);
        }
    }

    // Position `position` for every sequence: one new token each, KV length position + 1.
    private void DecodeStep(int[][] tables, int position, int step, int reuse, SparseOptions? sparse, float[] logits)
    {
        int batch = tables.Length;
        int used = TablePages(position + 1);
        var pageIds = new int[batch * used];
        var pageStarts = new int[batch + 1];
        for (int b = 0; b < batch; b++)
        {
            Array.Copy(tables[b], 0, pageIds, b * used, used);
            pageStarts[b + 1] = (b + 1) * used;
        }
        var plan = new StepPlan
        {
            TokenIds = RandomTokens(batch),
            Positions = Enumerable.Repeat(position, batch).ToArray(),
            QStarts = Enumerable.Range(0, batch + 1).ToArray(),
            KvLengths = Enumerable.Repeat(position + 1, batch).ToArray(),
            PageStarts = pageStarts,
            PageIds = pageIds,
            LogitTokens = Enumerable.Range(0, batch).ToArray(),
            Sparse = SparseStepFor(sparse, batch, reselect: step % reuse == 0),
        };
        executor.Step(plan, logits);
    }

    private static SparseStep? SparseStepFor(SparseOptions? sparse, int sequences, bool reselect) => sparse is null
        ? null
        : new SparseStep
        {
            StreamingHeads = sparse.StreamingHeads?.ToArray(),
            DecodeSinkTokens = sparse.DecodeSinkTokens,
            DecodeLocalTokens = sparse.DecodeLocalTokens,
            PrefillSinkTokens = sparse.PrefillSinkTokens,
            PrefillLocalTokens = sparse.PrefillLocalTokens,
            BudgetTokens = sparse.BudgetTokens,
            PerQueryHead = sparse.PerQueryHead,
            SelectionSlots = Enumerable.Range(0, sequences).ToArray(),
            Reselect = Enumerable.Repeat(reselect, sequences).ToArray(),
        };

    private int TablePages(int tokens) => (tokens + executor.PageSize - 1) / executor.PageSize;

    // Sequence b's pages: a contiguous run of the pool, so a batch needs batch * pages of it.
    private int[] Pages(int sequence, int tokens)
    {
        int count = TablePages(tokens);
        long needed = (long)(sequence + 1) * count;
        if (needed > executor.PageCount)
        {
            throw new ArgumentException(
                $"the benchmark needs {needed} KV pages of {executor.PageSize} tokens ({sequence + 1} sequences of {tokens} tokens); the pool has {executor.PageCount}: raise the KV memory");
        }
        return Enumerable.Range(sequence * count, count).ToArray();
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

    // Random K and V for positions [0, tokens), written a page at a time (fresh values per page, the same page
    // for every layer), so sparse selection sees pages that differ.
    private void FillSynthetic(int[] table, int tokens)
    {
        int pageSize = executor.PageSize;
        int width = executor.Config.KvHeads * executor.Config.HeadDim;
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
            Array.Fill(pages, table[start / pageSize]);
            for (int layer = 0; layer < executor.Config.Layers; layer++)
            {
                executor.Pool.Append(layer, pages.AsSpan(0, n), slots.AsSpan(0, n), k.AsSpan(0, n * width), v.AsSpan(0, n * width));
            }
        }
    }
}
