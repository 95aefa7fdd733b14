using Infinite.Engine;
using Infinite.Models;
using Infinite.Native;
using Infinite.Runtime;

namespace Infinite.Tests.Runtime;

public sealed class NativeExecutorTests
{
    private const int PageSize = 16;
    private const int Pages = 16;

    public static TheoryData<TensorType, DataType, RopeStyle, RopeScalingKind, double> Variants => new()
    {
        { TensorType.F32, DataType.F32, RopeStyle.Interleaved, RopeScalingKind.None, 1e-4 },
        { TensorType.F32, DataType.F32, RopeStyle.Half, RopeScalingKind.Llama3, 1e-4 },
        { TensorType.F16, DataType.F32, RopeStyle.Half, RopeScalingKind.None, 1e-4 },
        { TensorType.BF16, DataType.F32, RopeStyle.Interleaved, RopeScalingKind.Llama3, 1e-4 },
        { TensorType.F32, DataType.F32, RopeStyle.Interleaved, RopeScalingKind.Linear, 1e-4 },
        { TensorType.F32, DataType.Bf16, RopeStyle.Interleaved, RopeScalingKind.None, 3e-2 },
        { TensorType.F16, DataType.Bf16, RopeStyle.Half, RopeScalingKind.Llama3, 3e-2 },
        { TensorType.F32, DataType.F16, RopeStyle.Half, RopeScalingKind.None, 1e-2 },
        // int8 KV: each element within max|row| / 254 of its float (~0.4% of the row's largest, against bf16's
        // 0.2% of each element); the logits land at ~5e-3 here, inside the bf16 rows' 3e-2.
        { TensorType.F32, DataType.I8, RopeStyle.Half, RopeScalingKind.Llama3, 3e-2 },
    };

    [Theory]
    [MemberData(nameof(Variants))]
    public void Native_logits_match_the_float64_reference(TensorType weightType, DataType kvType, RopeStyle style, RopeScalingKind scaling, double tolerance)
    {
        RopeScaling rope = scaling switch
        {
            // Original context 64 puts head_dim 16's wavelengths in all three Llama3 bands.
            RopeScalingKind.Llama3 => new RopeScaling(RopeScalingKind.Llama3, Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalContext: 64),
            RopeScalingKind.Linear => new RopeScaling(RopeScalingKind.Linear, Factor: 2.5f),
            _ => RopeScaling.None,
        };
        using var weights = TestWeights.Random(TestWeights.TinyConfig(style, rope), seed: 21, weightType);
        using var native = new NativeExecutor(weights, new NativeExecutorOptions { KvType = kvType, PageSize = PageSize, PageCount = Pages });
        using var reference = new ReferenceExecutor(weights, PageSize, Pages);
        var pages = new ShuffledPages(PageSize, Pages, seed: 22);
        TestSequence a = new(pages), b = new(pages);
        int[] promptA = StepPlans.RandomTokens(37, 64, seed: 23), promptB = StepPlans.RandomTokens(9, 64, seed: 24);
        StepPlan[] plans =
        [
            StepPlans.Build(new StepPart(a, promptA[..20], AllLogits: true)),
            StepPlans.Build(new StepPart(b, promptB, AllLogits: true), new StepPart(a, promptA[20..], AllLogits: true)),
            StepPlans.Build(new StepPart(a, [5]), new StepPart(b, [7])),
            StepPlans.Build(new StepPart(b, [9]), new StepPart(a, [11])),
            StepPlans.Build(new StepPart(a, [13])),
        ];
        foreach (StepPlan plan in plans)
        {
            float[] expected = StepPlans.Run(reference, plan);
            float[] actual = StepPlans.Run(native, plan);
            double error = StepPlans.RelativeError(actual, expected);
            Assert.True(error < tolerance, $"max abs diff / max abs = {error:E3} (tolerance {tolerance:E1})");
        }
    }

    [Fact]
    public void Greedy_decoding_picks_the_same_tokens_as_the_reference()
    {
        using var weights = TestWeights.Random(TestWeights.TinyConfig(tied: true), seed: 31);
        using var native = new NativeExecutor(weights, new NativeExecutorOptions { PageSize = PageSize, PageCount = Pages });
        using var reference = new ReferenceExecutor(weights, PageSize, Pages);
        int[] prompt = StepPlans.RandomTokens(12, 64, seed: 32);
        Assert.Equal(Greedy(reference, prompt), Greedy(native, prompt));
    }

    [Fact]
    public void A_kv_memory_budget_sizes_the_pool()
    {
        using var weights = TestWeights.Random(TestWeights.TinyConfig(), seed: 41);
        using var measured = new NativeExecutor(weights, new NativeExecutorOptions { PageSize = 64, PageCount = 10 });
        long tenPages = measured.Pool.Bytes;
        using var budgeted = new NativeExecutor(weights, new NativeExecutorOptions { PageSize = 64, KvMemoryBytes = tenPages + tenPages / 20 });
        Assert.Equal(10, budgeted.PageCount);
        Assert.Equal(64, budgeted.PageSize);
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => new NativeExecutor(weights, new NativeExecutorOptions { KvMemoryBytes = 100 }));
        Assert.Contains("holds no page", error.Message);
        Assert.Throws<ArgumentException>(() => new NativeExecutor(weights, new NativeExecutorOptions { PageCount = 4, KvMemoryBytes = tenPages }));
    }

    [Fact]
    public void Bad_plan_values_surface_as_native_errors_that_name_the_field()
    {
        using var weights = TestWeights.Random(TestWeights.TinyConfig(), seed: 51);
        using var native = new NativeExecutor(weights, new NativeExecutorOptions { PageSize = PageSize, PageCount = 4 });
        var logits = new float[64];
        var gap = new StepPlan
        {
            TokenIds = [1, 2], Positions = [0, 2], QStarts = [0, 2], KvLengths = [3],
            PageStarts = [0, 1], PageIds = [0], LogitTokens = [1],
        };
        var error = Assert.Throws<InfiniteException>(() => native.Step(gap, logits));
        Assert.Contains("plan->positions[1]", error.NativeMessage);

        // The pool has 4 pages; page 4 is beyond it.
        var beyond = new StepPlan
        {
            TokenIds = [1], Positions = [0], QStarts = [0, 1], KvLengths = [1],
            PageStarts = [0, 1], PageIds = [4], LogitTokens = [0],
        };
        error = Assert.Throws<InfiniteException>(() => native.Step(beyond, logits));
        Assert.Equal(InfiniteStatus.OutOfRange, error.Status);
        Assert.Contains("plan->page_ids[0] (4) is out of range", error.NativeMessage);

        // Lengths that would send native code outside the arrays are caught before the call.
        var shortPages = new StepPlan
        {
            TokenIds = [1], Positions = [0], QStarts = [0, 1], KvLengths = [1],
            PageStarts = [0, 2], PageIds = [0], LogitTokens = [0],
        };
        Assert.Contains("PageStarts ends at 2 but PageIds has 1", Assert.Throws<ArgumentException>(() => native.Step(shortPages, logits)).Message);
    }

    [Fact]
    public void A_wrong_tensor_shape_is_named_by_the_native_loader()
    {
        using var weights = TestWeights.Random(TestWeights.TinyConfig(), seed: 61);
        weights.Reshape("blk.1.attn_k.weight", [16, 128]);
        var error = Assert.Throws<InfiniteException>(() => new NativeExecutor(weights));
        Assert.Contains("blk.1.attn_k.weight", error.NativeMessage);
        Assert.Contains("shape", error.NativeMessage);
    }

    [Fact]
    public void Load_progress_increases_to_the_total_bytes_of_weights()
    {
        using var weights = TestWeights.Random(TestWeights.TinyConfig(), seed: 71, TensorType.F16);
        var reports = new List<LoadProgress>();
        using var native = new NativeExecutor(weights, new NativeExecutorOptions { PageCount = 4, Progress = reports.Add });
        long total = weights.Tensors.Sum(t => t.Bytes);
        Assert.NotEmpty(reports);
        Assert.All(reports, r => Assert.Equal(total, r.Total));
        for (int i = 1; i < reports.Count; i++)
        {
            Assert.True(reports[i].Done >= reports[i - 1].Done, $"progress went back from {reports[i - 1].Done} to {reports[i].Done}");
        }
        Assert.Equal(total, reports[^1].Done);
        // F16 matrices are converted to float32 copies the model holds itself; F32 norms are used in place.
        long converted = weights.Tensors.Where(t => t.Type == TensorType.F16).Sum(t => t.ElementCount * 4);
        Assert.Equal(converted, native.Model.Bytes);
    }

    [Fact]
    public void A_throwing_progress_callback_fails_the_load_without_crashing()
    {
        using var weights = TestWeights.Random(TestWeights.TinyConfig(), seed: 72);
        var error = Assert.Throws<InvalidOperationException>(() => new NativeExecutor(weights,
            new NativeExecutorOptions { PageCount = 4, Progress = _ => throw new FormatException("observer failed") }));
        Assert.IsType<FormatException>(error.InnerException);
    }

    [Fact]
    public void A_sparse_step_without_streaming_heads_or_selection_equals_the_dense_step()
    {
        using var weights = TestWeights.Random(TestWeights.TinyConfig(), seed: 81);
        var options = new NativeExecutorOptions { PageSize = PageSize, PageCount = Pages, SelectionSlots = 2, MaxBudgetTokens = 32 };
        using var dense = new NativeExecutor(weights, options);
        using var sparse = new NativeExecutor(weights, options);
        var pages = new ShuffledPages(PageSize, Pages, seed: 82);
        var sequence = new TestSequence(pages);
        int[] prompt = StepPlans.RandomTokens(24, 64, seed: 83);
        StepPlan prefill = StepPlans.Build(new StepPart(sequence, prompt, AllLogits: true));
        StepPlan decode = StepPlans.Build(new StepPart(sequence, [3]));
        foreach (StepPlan plan in new[] { prefill, decode })
        {
            var asSparse = new StepPlan
            {
                TokenIds = plan.TokenIds, Positions = plan.Positions, QStarts = plan.QStarts, KvLengths = plan.KvLengths,
                PageStarts = plan.PageStarts, PageIds = plan.PageIds, LogitTokens = plan.LogitTokens,
                // Budget 32 >= 25 keys: no selection happens; no head is streaming.
                Sparse = new SparseStep { StreamingHeads = new bool[2 * 2], BudgetTokens = 32, SelectionSlots = [1], Reselect = [true] },
            };
            Assert.Equal(StepPlans.Run(dense, plan), StepPlans.Run(sparse, asSparse));
        }
        var outside = new StepPlan
        {
            TokenIds = decode.TokenIds, Positions = decode.Positions, QStarts = decode.QStarts, KvLengths = decode.KvLengths,
            PageStarts = decode.PageStarts, PageIds = decode.PageIds, LogitTokens = decode.LogitTokens,
            Sparse = new SparseStep { BudgetTokens = 32, SelectionSlots = [2], Reselect = [true] },
        };
        Assert.Contains("SelectionSlots[0] = 2 is outside [0, 2)", Assert.Throws<ArgumentException>(() => StepPlans.Run(sparse, outside)).Message);
    }

    [Fact]
    public void The_weight_source_is_disposed_only_when_the_executor_owns_it()
    {
        var weights = TestWeights.Random(TestWeights.TinyConfig(), seed: 111);
        new NativeExecutor(weights, new NativeExecutorOptions { PageCount = 2 }).Dispose();
        Assert.NotEmpty(weights.Tensors);
        var executor = new NativeExecutor(weights, new NativeExecutorOptions { PageCount = 2, OwnsWeights = true });
        executor.Dispose();
        executor.Dispose();
        Assert.Empty(weights.Tensors);
        Assert.Throws<ObjectDisposedException>(() => StepPlans.Run(executor, StepPlans.Build(new StepPart(new TestSequence(new ShuffledPages(PageSize, 2, 1)), [1]))));
    }

    private static int[] Greedy(IModelExecutor executor, int[] prompt)
    {
        var sequence = new TestSequence(new ShuffledPages(PageSize, Pages, seed: 33));
        float[] logits = StepPlans.Run(executor, StepPlans.Build(new StepPart(sequence, prompt)));
        var picked = new List<int>();
        for (int step = 0; step < 16; step++)
        {
            int next = StepPlans.ArgMax(logits);
            picked.Add(next);
            logits = StepPlans.Run(executor, StepPlans.Build(new StepPart(sequence, [next])));
        }
        return [.. picked];
    }
}
