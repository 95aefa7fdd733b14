// CUDA attention figures, through the C ABI (page pool + inf_attention_run), registered only when the
// CUDA backend loads at run time.
//
// 1. CudaCopyBandwidth: inf_buffer_copy of 1 GiB within the device. Its counter hbm_GBps counts read +
//    written bytes (2 x copied): the memory traffic a device-to-device copy sustains, the practical
//    ceiling for a kernel that streams K/V once.
// 2. CudaDecode/batch/context: 32 q heads, 8 KV heads, head_dim 128, bf16 pool, 64-token pages, one query
//    row per sequence at the last position. GBps = K+V bytes of every visible key read once / time;
//    pct_of_copy = GBps / hbm_GBps of (1). Target for the GPU session: >= 80% at batch 32 x 32K.
// 3. CudaPrefill/context: causal prefill of one sequence, same shape. TFLOPs = 4 * q_heads * head_dim *
//    (causal visible pairs = L (L + 1) / 2) / time (QK^T and PV, 2 FLOP per multiply-add). Target
//    >= 300 TFLOP/s at 16K on H100. Honest expectation: the kernel behind it is the FlashAttention-2
//    style mma.sync m16n8k16 kernel of prefill_attention.cu (no wgmma/TMA), which typically lands around
//    35-50% of H100 dense peak, below 300. INFINITE_CUDA_PREFILL=simt runs the SIMT split-KV kernel
//    instead, for comparison.
// 4. CudaSparse/decode/ctx:N/batch:1, CudaSparse/prefill/ctx:N/rows:R, CudaSparse/summary: the CUDA rows of
//    the sparse summary of sparse_bench.cpp (same shape: 32 q / 8 KV heads x 128, bf16, 64-token pages with
//    16-token logical pages). Decode: dense vs sparse with per-KV-head lists from inf_page_select (budget
//    4096), target >= 10x at 128K; the selector's time amortised over R = 4 steps as % of the sparse
//    attention, target <= 25%. Prefill: a chunk of the last rows, dense vs Λ-sparse with half the KV heads
//    streaming (sink 128 + local 4096), target >= 1.7x at 128K. Each figure is the median of 5 trials (a
//    trial: several calls, then a synchronize). The pools are not filled either: the attention timings do
//    not depend on the values; the selector's top-k sees all-equal scores (zero keys), which may time a
//    little differently from real keys.
// The pools are not filled (timing does not depend on the values; cudaMalloc'd memory is usually zero):
// filling 17 GB through inf_page_pool_append from host float32 would dominate the run. Each iteration
// is one inf_attention_run (which also stages the batch's int arrays to the device) + synchronize.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "infinite/infinite.h"

namespace {

double g_copy_traffic = 0.0;  // bytes per second, read + written, of the 1 GiB device copy

constexpr int kQHeads = 32;
constexpr int kKvHeads = 8;
constexpr int kHeadDim = 128;
constexpr int kPageSize = 64;

bool ok(benchmark::State& state, inf_status status) {
    if (status != INF_STATUS_OK) {
        state.SkipWithError(inf_last_error());
        return false;
    }
    return true;
}

void copy_bandwidth(benchmark::State& state) {
    constexpr std::uint64_t kBytes = std::uint64_t{1} << 30;
    inf_device* device = nullptr;
    inf_buffer* a = nullptr;
    inf_buffer* b = nullptr;
    if (ok(state, inf_device_create(INF_DEVICE_KIND_CUDA, 0, &device)) &&
        ok(state, inf_buffer_create(device, kBytes, &a)) && ok(state, inf_buffer_create(device, kBytes, &b)) &&
        ok(state, inf_buffer_copy(b, 0, a, 0, kBytes)) && ok(state, inf_device_synchronize(device))) {
        for (auto _ : state) {
            if (!ok(state, inf_buffer_copy(b, 0, a, 0, kBytes)) || !ok(state, inf_device_synchronize(device))) {
                break;
            }
        }
        state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kBytes));
        state.counters["hbm_GBps"] = benchmark::Counter(static_cast<double>(state.iterations()) * 2.0 * kBytes / 1e9,
                                                        benchmark::Counter::kIsRate);
    }
    inf_buffer_destroy(b);
    inf_buffer_destroy(a);
    inf_device_destroy(device);
}

// Copy traffic measured again when a decode benchmark runs alone (filters): 3 copies of 1 GiB.
double copy_traffic(inf_device* device) {
    if (g_copy_traffic > 0) {
        return g_copy_traffic;
    }
    constexpr std::uint64_t kBytes = std::uint64_t{1} << 30;
    inf_buffer* a = nullptr;
    inf_buffer* b = nullptr;
    if (inf_buffer_create(device, kBytes, &a) == INF_STATUS_OK && inf_buffer_create(device, kBytes, &b) == INF_STATUS_OK) {
        inf_buffer_copy(b, 0, a, 0, kBytes);
        inf_device_synchronize(device);
        const auto start = std::chrono::steady_clock::now();
        for (int i = 0; i < 3; ++i) {
            inf_buffer_copy(b, 0, a, 0, kBytes);
        }
        inf_device_synchronize(device);
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        g_copy_traffic = seconds > 0 ? 3.0 * 2.0 * kBytes / seconds : 0.0;
    }
    inf_buffer_destroy(b);
    inf_buffer_destroy(a);
    return g_copy_traffic;
}

// batch sequences of context tokens each; rows query rows per sequence (the last positions).
void attention(benchmark::State& state, int batch, int context, int rows, bool decode) {
    inf_device* device = nullptr;
    inf_page_pool* pool = nullptr;
    inf_buffer* q = nullptr;
    inf_buffer* o = nullptr;
    inf_buffer* lse = nullptr;
    const int pages_per_sequence = (context + kPageSize - 1) / kPageSize;
    const std::int64_t total_q = static_cast<std::int64_t>(batch) * rows;
    const std::uint64_t q_elements = static_cast<std::uint64_t>(total_q) * kQHeads * kHeadDim;
    inf_page_pool_config config{};
    config.size = sizeof config;
    config.dtype = INF_DTYPE_BF16;
    config.layers = 1;
    config.kv_heads = kKvHeads;
    config.head_dim = kHeadDim;
    config.page_size = kPageSize;
    config.pages = batch * pages_per_sequence;
    config.logical_page_size = 0;
    std::vector<int32_t> q_starts, q_positions, kv_lengths, page_starts, page_ids;
    for (int s = 0; s <= batch; ++s) {
        q_starts.push_back(s * rows);
        page_starts.push_back(s * pages_per_sequence);
    }
    for (int s = 0; s < batch; ++s) {
        kv_lengths.push_back(context);
        for (int r = 0; r < rows; ++r) {
            q_positions.push_back(context - rows + r);
        }
        for (int e = 0; e < pages_per_sequence; ++e) {
            page_ids.push_back(s * pages_per_sequence + e);
        }
    }
    inf_attention_batch desc{};
    desc.size = sizeof desc;
    desc.sequences = batch;
    desc.q_heads = kQHeads;
    desc.q_dtype = INF_DTYPE_F32;
    desc.q_starts = q_starts.data();
    desc.q_positions = q_positions.data();
    desc.kv_lengths = kv_lengths.data();
    desc.page_starts = page_starts.data();
    desc.page_ids = page_ids.data();
    const std::vector<float> q_host(q_elements, 0.01f);
    if (ok(state, inf_device_create(INF_DEVICE_KIND_CUDA, 0, &device)) &&
        ok(state, inf_page_pool_create(device, &config, &pool)) &&
        ok(state, inf_buffer_create(device, q_elements * 4, &q)) &&
        ok(state, inf_buffer_create(device, q_elements * 4, &o)) &&
        ok(state, inf_buffer_create(device, static_cast<std::uint64_t>(total_q) * kQHeads * 4, &lse)) &&
        ok(state, inf_buffer_write(q, 0, q_host.data(), q_elements * 4)) &&
        ok(state, inf_attention_run(pool, 0, &desc, q, o, lse)) && ok(state, inf_device_synchronize(device))) {
        const double traffic = decode ? copy_traffic(device) : 0.0;
        for (auto _ : state) {
            if (!ok(state, inf_attention_run(pool, 0, &desc, q, o, lse)) || !ok(state, inf_device_synchronize(device))) {
                break;
            }
        }
        const double n = static_cast<double>(state.iterations());
        if (decode) {
            const double bytes = static_cast<double>(batch) * context * kKvHeads * kHeadDim * 2.0 /*bf16*/ * 2.0 /*K+V*/;
            state.counters["GBps"] = benchmark::Counter(n * bytes / 1e9, benchmark::Counter::kIsRate);
            state.counters["copy_hbm_GBps"] = traffic / 1e9;
            // pct_of_copy = GBps / copy_hbm_GBps * 100 (a rate counter cannot be divided here: the
            // percentage is the ratio of the two printed figures; kept as a pre-computed rate too).
            state.counters["pct_of_copy"] = benchmark::Counter(
                traffic > 0 ? n * bytes / traffic * 100.0 : 0.0, benchmark::Counter::kIsRate);
        } else {
            const double pairs = static_cast<double>(context) * (context + 1) / 2.0 * batch;
            const double flops = 4.0 * kQHeads * kHeadDim * pairs;
            state.counters["TFLOPs"] = benchmark::Counter(n * flops / 1e12, benchmark::Counter::kIsRate);
        }
    }
    inf_buffer_destroy(lse);
    inf_buffer_destroy(o);
    inf_buffer_destroy(q);
    inf_page_pool_destroy(pool);
    inf_device_destroy(device);
}

// ---- sparse attention rows (the CUDA counterpart of sparse_bench.cpp's summary) ----

constexpr int kSparseBudget = 4096;
constexpr int kSparseLogicalPage = 16;
constexpr int kSparseReuse = 4;
constexpr int kSparseTrials = 5;

std::vector<std::string>& sparse_summary() {
    static std::vector<std::string> lines;
    return lines;
}

// Median over kSparseTrials of the mean seconds per call of fn (reps calls, then a synchronize); false
// when a call fails (the state then carries the error).
bool median_seconds(benchmark::State& state, inf_device* device, int reps, const std::function<inf_status()>& fn,
                    double* seconds) {
    std::vector<double> trials;
    for (int trial = 0; trial < kSparseTrials; ++trial) {
        const auto start = std::chrono::steady_clock::now();
        for (int i = 0; i < reps; ++i) {
            if (!ok(state, fn())) {
                return false;
            }
        }
        if (!ok(state, inf_device_synchronize(device))) {
            return false;
        }
        trials.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / reps);
    }
    std::sort(trials.begin(), trials.end());
    *seconds = trials[trials.size() / 2];
    return true;
}

// One sequence of context tokens (pages 0.. in order) in a bf16 pool with summaries, rows query rows at the
// last positions (q: small deterministic values, f32), and the o / lse buffers.
struct SparseSetup {
    inf_device* device = nullptr;
    inf_page_pool* pool = nullptr;
    inf_buffer* q = nullptr;
    inf_buffer* o = nullptr;
    inf_buffer* lse = nullptr;
    std::vector<int32_t> q_starts, q_positions, kv_lengths, page_starts, page_ids;
    inf_attention_batch dense{};

    SparseSetup() = default;
    SparseSetup(const SparseSetup&) = delete;
    SparseSetup& operator=(const SparseSetup&) = delete;
    ~SparseSetup() {
        inf_buffer_destroy(lse);
        inf_buffer_destroy(o);
        inf_buffer_destroy(q);
        inf_page_pool_destroy(pool);
        inf_device_destroy(device);
    }

    bool create(benchmark::State& state, int context, int rows) {
        const int pages = (context + kPageSize - 1) / kPageSize;
        inf_page_pool_config config{};
        config.size = sizeof config;
        config.dtype = INF_DTYPE_BF16;
        config.layers = 1;
        config.kv_heads = kKvHeads;
        config.head_dim = kHeadDim;
        config.page_size = kPageSize;
        config.pages = pages;
        config.logical_page_size = kSparseLogicalPage;
        q_starts = {0, rows};
        kv_lengths = {context};
        page_starts = {0, pages};
        for (int r = 0; r < rows; ++r) {
            q_positions.push_back(context - rows + r);
        }
        for (int e = 0; e < pages; ++e) {
            page_ids.push_back(e);
        }
        const std::uint64_t q_elements = static_cast<std::uint64_t>(rows) * kQHeads * kHeadDim;
        std::vector<float> q_host(q_elements);
        std::uint32_t x = 12345;
        for (float& value : q_host) {
            x = x * 1664525u + 1013904223u;
            value = static_cast<float>(x >> 8) * (1.0f / 16777216.0f) - 0.5f;
        }
        dense.size = sizeof dense;
        dense.sequences = 1;
        dense.q_heads = kQHeads;
        dense.q_dtype = INF_DTYPE_F32;
        dense.q_starts = q_starts.data();
        dense.q_positions = q_positions.data();
        dense.kv_lengths = kv_lengths.data();
        dense.page_starts = page_starts.data();
        dense.page_ids = page_ids.data();
        return ok(state, inf_device_create(INF_DEVICE_KIND_CUDA, 0, &device)) &&
               ok(state, inf_page_pool_create(device, &config, &pool)) &&
               ok(state, inf_buffer_create(device, q_elements * 4, &q)) &&
               ok(state, inf_buffer_create(device, q_elements * 4, &o)) &&
               ok(state, inf_buffer_create(device, static_cast<std::uint64_t>(rows) * kQHeads * 4, &lse)) &&
               ok(state, inf_buffer_write(q, 0, q_host.data(), q_elements * 4));
    }

    inf_status run(const inf_attention_batch& batch) { return inf_attention_run(pool, 0, &batch, q, o, lse); }
};

void cuda_sparse_decode(benchmark::State& state, int context) {
    SparseSetup setup;
    if (!setup.create(state, context, 1)) {
        return;
    }
    const std::vector<int32_t> q_rows{0};
    inf_page_selection sel{};
    sel.size = sizeof sel;
    sel.sequences = 1;
    sel.q_heads = kQHeads;
    sel.q_dtype = INF_DTYPE_F32;
    sel.budget_tokens = kSparseBudget;
    sel.per_query_head = 0;  // one list per KV head
    sel.q_rows = q_rows.data();
    sel.kv_lengths = setup.kv_lengths.data();
    sel.page_starts = setup.page_starts.data();
    sel.page_ids = setup.page_ids.data();
    const std::int64_t capacity = static_cast<std::int64_t>(kKvHeads) * (kSparseBudget / kPageSize);
    std::vector<int32_t> starts(kKvHeads + 1, 0);
    std::vector<int32_t> indices(static_cast<std::size_t>(capacity), 0);
    inf_attention_batch sparse = setup.dense;
    sparse.head_page_starts = starts.data();
    sparse.head_page_indices = indices.data();
    sparse.head_lists_per_query_head = 0;
    const auto select = [&] {
        return inf_page_select(setup.pool, 0, &sel, setup.q, starts.data(), indices.data(), capacity);
    };
    double dense_s = 0, sparse_s = 0, select_s = 0;
    for (auto _ : state) {
        // Warm-up (module loading, staging buffers), then the lists the sparse runs read.
        if (!ok(state, setup.run(setup.dense)) || !ok(state, select()) || !ok(state, setup.run(sparse)) ||
            !ok(state, inf_device_synchronize(setup.device))) {
            return;
        }
        if (!median_seconds(state, setup.device, 20, [&] { return setup.run(setup.dense); }, &dense_s) ||
            !median_seconds(state, setup.device, 20, select, &select_s) ||
            !ok(state, select()) ||  // the lists are host memory: the last selection is what sparse reads
            !median_seconds(state, setup.device, 20, [&] { return setup.run(sparse); }, &sparse_s)) {
            return;
        }
    }
    const double speedup = dense_s / sparse_s;
    const double amortised = select_s / kSparseReuse / sparse_s;
    state.counters["dense_us"] = dense_s * 1e6;
    state.counters["sparse_kvh_us"] = sparse_s * 1e6;
    state.counters["select_kvh_us"] = select_s * 1e6;
    state.counters["speedup"] = speedup;
    state.counters["select_R4_pct_of_sparse"] = 100.0 * amortised;
    char line[512];
    std::snprintf(line, sizeof line,
                  "decode   ctx %7d batch 1 (32q/8kv): dense %8.3f ms | sparse per-kv-head %7.3f ms (%5.1fx) [target >= 10x at 128K]%s"
                  " | select kv-head %6.3f ms, /R=4 = %5.1f%% of sparse [target <= 25%%]%s",
                  context, dense_s * 1e3, sparse_s * 1e3, speedup,
                  context == 131072 ? (speedup >= 10 ? " MET" : " MISSED") : "", select_s * 1e3, 100.0 * amortised,
                  amortised <= 0.25 ? " MET" : " MISSED");
    sparse_summary().push_back(line);
}

void cuda_sparse_prefill(benchmark::State& state, int context, int rows) {
    SparseSetup setup;
    if (!setup.create(state, context, rows)) {
        return;
    }
    std::vector<int32_t> streaming(kKvHeads);
    for (int h = 0; h < kKvHeads; ++h) {
        streaming[static_cast<std::size_t>(h)] = h % 2;  // half the KV heads streaming
    }
    inf_attention_batch sparse = setup.dense;
    sparse.streaming_heads = streaming.data();
    sparse.sink_tokens = 128;
    sparse.local_tokens = 4096;
    double dense_s = 0, sparse_s = 0;
    for (auto _ : state) {
        if (!ok(state, setup.run(setup.dense)) || !ok(state, setup.run(sparse)) ||
            !ok(state, inf_device_synchronize(setup.device))) {
            return;
        }
        if (!median_seconds(state, setup.device, 3, [&] { return setup.run(setup.dense); }, &dense_s) ||
            !median_seconds(state, setup.device, 3, [&] { return setup.run(sparse); }, &sparse_s)) {
            return;
        }
    }
    const double speedup = dense_s / sparse_s;
    state.counters["dense_ms"] = dense_s * 1e3;
    state.counters["lambda_ms"] = sparse_s * 1e3;
    state.counters["speedup"] = speedup;
    char line[512];
    std::snprintf(line, sizeof line,
                  "prefill  ctx %7d, last %d rows (32q/8kv, 4 of 8 KV heads streaming, sink 128 + local 4096): dense %8.3f ms, "
                  "Λ-sparse %8.3f ms, %4.2fx [target >= 1.7x at 128K]%s",
                  context, rows, dense_s * 1e3, sparse_s * 1e3, speedup,
                  context == 131072 ? (speedup >= 1.7 ? " MET" : " MISSED") : "");
    sparse_summary().push_back(line);
}

void cuda_sparse_summary(benchmark::State& state) {
    for (auto _ : state) {
    }
    std::printf("\n==== sparse attention summary (CUDA, through the C ABI; medians of %d trials) ====\n", kSparseTrials);
    for (const std::string& line : sparse_summary()) {
        std::printf("%s\n", line.c_str());
    }
    std::printf("\n");
    std::fflush(stdout);
}

}  // namespace

// The device-copy traffic (read + written bytes per second) for the other CUDA rows (cuda_model_bench.cpp).
double cuda_copy_traffic(inf_device* device) { return copy_traffic(device); }

void register_cuda_attention_benchmarks() {
    if (inf_backend_load(INF_DEVICE_KIND_CUDA) != INF_STATUS_OK) {
        return;  // no GPU here: nothing registered
    }
    benchmark::RegisterBenchmark("CudaCopyBandwidth/1GiB", copy_bandwidth)->UseRealTime()->Unit(benchmark::kMillisecond);
    for (int batch : {1, 8, 32}) {
        for (int context : {4096, 32768, 131072}) {
            const std::string name = "CudaDecode/batch:" + std::to_string(batch) + "/context:" + std::to_string(context);
            benchmark::RegisterBenchmark(name.c_str(), [batch, context](benchmark::State& state) {
                attention(state, batch, context, 1, true);
            })->UseRealTime()->Unit(benchmark::kMicrosecond);
        }
    }
    for (int context : {4096, 16384}) {
        const std::string name = "CudaPrefill/causal/context:" + std::to_string(context);
        benchmark::RegisterBenchmark(name.c_str(), [context](benchmark::State& state) {
            attention(state, 1, context, context, false);
        })->UseRealTime()->Unit(benchmark::kMillisecond);
    }
    constexpr int kSparsePrefillRows = 2048;  // the chunk of last rows
    for (int context : {32768, 131072}) {
        benchmark::RegisterBenchmark(("CudaSparse/decode/ctx:" + std::to_string(context) + "/batch:1").c_str(),
                                     [context](benchmark::State& state) { cuda_sparse_decode(state, context); })
            ->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);
        benchmark::RegisterBenchmark(
            ("CudaSparse/prefill/ctx:" + std::to_string(context) + "/rows:" + std::to_string(kSparsePrefillRows)).c_str(),
            [context](benchmark::State& state) { cuda_sparse_prefill(state, context, kSparsePrefillRows); })
            ->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);
    }
    benchmark::RegisterBenchmark("CudaSparse/summary", cuda_sparse_summary)->Iterations(1);
}
