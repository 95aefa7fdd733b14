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
// The pools are not filled (timing does not depend on the values; cudaMalloc'd memory is usually zero):
// filling 17 GB through inf_page_pool_append from host float32 would dominate the run. Each iteration
// is one inf_attention_run (which also stages the batch's int arrays to the device) + synchronize.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
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

}  // namespace

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
}
