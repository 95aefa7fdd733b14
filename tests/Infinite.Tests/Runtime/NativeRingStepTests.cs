using Infinite.Native;
using Infinite.Runtime;

namespace Infinite.Tests.Runtime;

/// <summary>
/// Streaming heads in a ring of pages (<see cref="NativeSparseStep.RingPool"/>): a greedy generation that runs far
/// past the ring (its local pages are reused many times) picks the same tokens, with the same logits, as the same
/// sparse steps with every head in one paged pool; the two ring-side pools hold fewer bytes; bad rings are refused
/// with the native message.
/// </summary>
public sealed class NativeRingStepTests
{
    private const int PageSize = 16;
    private const int Sink = 4;
    private const int Local = 20;
    private const int Prompt = 37;
    private const int Chunk = 16;
    private const int Generated = 300;
    // [layers][kv_heads]: layer 0 streams KV head 1 only, layer 1 streams both (no retrieval head).
    private static readonly int[] Roles = [0, 1, 1, 1];
    // Sink 1 page + a window of Local + Chunk - 1 = 35 keys (ceil(34 / 16) + 1 = 4 pages).
    private const int RingSize = 5;

    [Fact]
    public void Greedy_tokens_with_a_ring_equal_the_paged_layout_far_past_the_window()
    {
        using var weights = TestWeights.Random(TestWeights.TinyConfig(), seed: 211);
        using var executor = new NativeExecutor(weights, new NativeExecutorOptions { PageSize = PageSize, PageCount = 1 });
        int total = Prompt + Generated;
        int pages = (total + PageSize - 1) / PageSize;
        using var paged = PagePool.Create(executor.Device, new PagePoolConfig(2, 2, 16, PageSize, pages, DataType.F32, 8));
        using var retrieval = PagePool.Create(executor.Device,
            new PagePoolConfig(2, 2, 16, PageSize, pages, DataType.F32, 8) { LayerKvHeads = [1, 0] });
        using var ring = PagePool.Create(executor.Device,
            new PagePoolConfig(2, 2, 16, PageSize, RingSize, DataType.F32) { LayerKvHeads = [1, 2] });
        Assert.Equal([1, 0], retrieval.Config.LayerKvHeads);
        Assert.True(retrieval.Bytes + ring.Bytes < paged.Bytes);
        // The ring's 4 local pages (64 keys) are reused about 5 times over the sequence.
        Assert.True(total - PageSize > 4 * (RingSize - 1) * PageSize, "the generation must wrap the ring's local pages several times");

        int[] prompt = StepPlans.RandomTokens(Prompt, 64, seed: 212);
        (int[] tokens, float[] logits) Generate(PagePool pool, PagePool? ringPool)
        {
            var tokens = new List<int>(prompt);
            var logits = new List<float>();
            int done = 0;
            while (tokens.Count < total)
            {
                int n = done < Prompt ? Math.Min(Chunk, Prompt - done) : 1;
                float[] row = Step(executor, pool, ringPool, tokens.GetRange(done, n).ToArray(), done);
                done += n;
                if (done < Prompt)
                {
                    continue;
                }
                logits.AddRange(row);
                tokens.Add(ArgMax(row));
            }
            return (tokens.ToArray(), logits.ToArray());
        }

        var expected = Generate(paged, null);
        var actual = Generate(retrieval, ring);
        Assert.Equal(expected.tokens, actual.tokens);
        Assert.True(StepPlans.RelativeError(actual.logits, expected.logits) < 1e-5,
            $"max abs diff / max abs = {StepPlans.RelativeError(actual.logits, expected.logits):E3}");
    }

    [Fact]
    public void A_ring_too_small_for_the_chunk_is_refused_naming_the_sequence()
    {
        using var weights = TestWeights.Random(TestWeights.TinyConfig(), seed: 221);
        using var executor = new NativeExecutor(weights, new NativeExecutorOptions { PageSize = PageSize, PageCount = 1 });
        using var retrieval = PagePool.Create(executor.Device,
            new PagePoolConfig(2, 2, 16, PageSize, 4, DataType.F32, 8) { LayerKvHeads = [1, 0] });
        using var ring = PagePool.Create(executor.Device,
            new PagePoolConfig(2, 2, 16, PageSize, RingSize, DataType.F32) { LayerKvHeads = [1, 2] });
        int[] tokens = StepPlans.RandomTokens(Chunk, 64, seed: 222);
        var error = Assert.Throws<InfiniteException>(() => Step(executor, retrieval, ring, tokens, 0, ringSize: RingSize - 1));
        Assert.Contains("the ring of sequence 0 has 4 pages of 16 tokens but this step needs 5", error.Message);
    }

    // One step of one sequence: tokens at positions first .., pages 0 .. of pool (the ring: pages 0 .. ringSize-1
    // of ringPool); the logits of the last token.
    private static float[] Step(NativeExecutor executor, PagePool pool, PagePool? ringPool, int[] tokens, int first,
        int ringSize = RingSize)
    {
        int n = tokens.Length;
        int kv = first + n;
        int pageCount = (kv + PageSize - 1) / PageSize;
        var positions = new int[n];
        for (int i = 0; i < n; i++)
        {
            positions[i] = first + i;
        }
        var pageIds = new int[pageCount];
        for (int j = 0; j < pageCount; j++)
        {
            pageIds[j] = pool.Config.Pages - 1 - j;  // not the identity mapping, and fixed across steps
        }
        var ringPages = new int[ringSize];
        for (int j = 0; j < ringSize; j++)
        {
            ringPages[j] = ringSize - 1 - j;
        }
        var plan = new NativeStepPlan
        {
            TokenIds = tokens, Positions = positions, QStarts = [0, n], KvLengths = [kv], PageStarts = [0, pageCount],
            PageIds = pageIds, LogitTokens = [n - 1],
        };
        var sparse = new NativeSparseStep
        {
            StreamingHeads = Roles, DecodeSinkTokens = Sink, DecodeLocalTokens = Local, PrefillSinkTokens = Sink,
            PrefillLocalTokens = Local, BudgetTokens = PageSize * 2,
            RingPool = ringPool, RingStarts = [0, ringSize], RingPages = ringPages,
        };
        var logits = new float[64];
        Array.Fill(logits, float.NaN);
        executor.Model.Step(pool, plan, sparse, logits);
        return logits;
    }

    private static int ArgMax(float[] row)
    {
        int best = 0;
        for (int i = 1; i < row.Length; i++)
        {
            if (row[i] > row[best])
            {
                best = i;
            }
        }
        return best;
    }
}
