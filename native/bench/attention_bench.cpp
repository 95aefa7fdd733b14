// CPU MicroAttention through the C ABI (inf_page_pool_* / inf_attention_run), against this machine's
// own limits measured in the same run:
//   attention/machine           2-thread (all-thread) streaming read bandwidth and peak FMA rate.
//   attention/cpu_decode/...    batch x context decode, 32 q heads / 8 kv heads, head_dim 128, f32 and bf16 KV.
//   attention/cpu_prefill/...   one sequence, a chunk of query rows at the end of the context, f32.
//   attention/model_decode/...  the model's shape (8 q heads / 2 kv heads, head_dim 64, bf16 or i8): batch 1.
//   attention/model_prefill/... the same shape: the last 2048-row chunk of a 32K prompt.
//   attention/decode_shape/...  batch-1 decode at 32K over GQA group (q heads per kv head) x head_dim x dtype.
// Counters: GB/s = K+V bytes of the visible keys, read once per call; GFLOP/s = 4 * q_heads * head_dim *
// visible keys, summed over query rows (QK^T and PV, 2 FLOPs per multiply-add each); pct_bw / pct_fma
// = those rates as a percentage of the measured limits.
// The pools are 2 GiB (f32) / 1 GiB (bf16), much larger than the last-level cache; calls cycle through
// disjoint page ranges so repeated iterations do not hit in cache. Batches needing more KV than a pool
// holds reuse its pages (noted in the label); the reads still come from DRAM.
// Run: build/native/bin/infinite_bench --benchmark_filter=attention/
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "infinite/infinite.h"

#if defined(__x86_64__)
#include <immintrin.h>
// GCC 12 reports the intrinsics' deliberate _mm512_undefined_*() operands as uninitialized.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#endif

namespace {

constexpr int kPageSize = 64;

// The attention shape of a bench row.
struct Shape {
    int q_heads;
    int kv_heads;
    int head_dim;
};
constexpr Shape kWide{32, 8, 128};   // the original rows
constexpr Shape kModel{8, 2, 64};    // the 12M Llama of model_bench

int bench_threads() {
    if (const char* env = std::getenv("INFINITE_THREADS")) {
        const int value = std::atoi(env);
        if (value >= 1) {
            return value;
        }
    }
    const unsigned hardware = std::thread::hardware_concurrency();
    return hardware == 0 ? 1 : static_cast<int>(hardware);
}

double now_seconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// ---- machine limits ----

double measure_read_bandwidth() {
    const std::size_t words = (std::size_t{1} << 30) / sizeof(std::uint64_t);  // 1 GiB
    std::unique_ptr<std::uint64_t[]> data(new std::uint64_t[words]);
    const int threads = bench_threads();
    // First touch from the reading threads.
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
            const std::size_t begin = words * static_cast<std::size_t>(t) / static_cast<std::size_t>(threads);
            const std::size_t end = words * static_cast<std::size_t>(t + 1) / static_cast<std::size_t>(threads);
            for (std::size_t i = begin; i < end; ++i) {
                data[i] = i;
            }
        });
    }
    for (auto& thread : pool) {
        thread.join();
    }
    double best = 0.0;
    std::atomic<std::uint64_t> sink{0};
    for (int rep = 0; rep < 4; ++rep) {
        pool.clear();
        const double start = now_seconds();
        for (int t = 0; t < threads; ++t) {
            pool.emplace_back([&, t] {
                const std::size_t begin = words * static_cast<std::size_t>(t) / static_cast<std::size_t>(threads);
                const std::size_t end = words * static_cast<std::size_t>(t + 1) / static_cast<std::size_t>(threads);
                std::uint64_t a = 0, b = 0, c = 0, d = 0;
                for (std::size_t i = begin; i + 4 <= end; i += 4) {
                    a += data[i];
                    b += data[i + 1];
                    c += data[i + 2];
                    d += data[i + 3];
                }
                sink += a + b + c + d;
            });
        }
        for (auto& thread : pool) {
            thread.join();
        }
        const double seconds = now_seconds() - start;
        best = std::max(best, static_cast<double>(words * sizeof(std::uint64_t)) / seconds / 1e9);
    }
    benchmark::DoNotOptimize(sink.load());
    return best;
}

#if defined(__x86_64__)
__attribute__((target("avx512f,fma"))) double fma_loop_avx512(std::int64_t iterations) {
    __m512 acc[16];
    for (int i = 0; i < 16; ++i) {
        acc[i] = _mm512_set1_ps(static_cast<float>(i) * 1e-3f);
    }
    const __m512 a = _mm512_set1_ps(0.999999f);
    const __m512 b = _mm512_set1_ps(1e-7f);
    for (std::int64_t n = 0; n < iterations; ++n) {
        for (int i = 0; i < 16; ++i) {
            acc[i] = _mm512_fmadd_ps(acc[i], a, b);
        }
    }
    __m512 sum = acc[0];
    for (int i = 1; i < 16; ++i) {
        sum = _mm512_add_ps(sum, acc[i]);
    }
    return static_cast<double>(_mm512_reduce_add_ps(sum));
}

__attribute__((target("avx2,fma"))) double fma_loop_avx2(std::int64_t iterations) {
    __m256 acc[12];
    for (int i = 0; i < 12; ++i) {
        acc[i] = _mm256_set1_ps(static_cast<float>(i) * 1e-3f);
    }
    const __m256 a = _mm256_set1_ps(0.999999f);
    const __m256 b = _mm256_set1_ps(1e-7f);
    for (std::int64_t n = 0; n < iterations; ++n) {
        for (int i = 0; i < 12; ++i) {
            acc[i] = _mm256_fmadd_ps(acc[i], a, b);
        }
    }
    __m256 sum = acc[0];
    for (int i = 1; i < 12; ++i) {
        sum = _mm256_add_ps(sum, acc[i]);
    }
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, sum);
    return static_cast<double>(lanes[0]);
}
#endif

// FLOPs per second of FMAs on all threads (2 FLOPs per lane per FMA).
double measure_peak_fma(const char** isa) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    const bool avx512 = __builtin_cpu_supports("avx512f") != 0;
    const bool avx2 = __builtin_cpu_supports("avx2") != 0 && __builtin_cpu_supports("fma") != 0;
    if (!avx512 && !avx2) {
        *isa = "none";
        return 0.0;
    }
    *isa = avx512 ? "avx512" : "avx2";
    const std::int64_t iterations = 100'000'000;  // ~0.5-1 s
    const double flops_per_thread = static_cast<double>(iterations) * (avx512 ? 16.0 * 16.0 * 2.0 : 12.0 * 8.0 * 2.0);
    const int threads = bench_threads();
    double best = 0.0;
    for (int rep = 0; rep < 2; ++rep) {
        std::vector<std::thread> pool;
        std::atomic<int> sink{0};
        const double start = now_seconds();
        for (int t = 0; t < threads; ++t) {
            pool.emplace_back([&] {
                const double r = avx512 ? fma_loop_avx512(iterations / (rep == 0 ? 10 : 1))
                                        : fma_loop_avx2(iterations / (rep == 0 ? 10 : 1));
                sink += r > 1e30 ? 1 : 0;
            });
        }
        for (auto& thread : pool) {
            thread.join();
        }
        const double seconds = now_seconds() - start;
        best = std::max(best, flops_per_thread / (rep == 0 ? 10.0 : 1.0) * threads / seconds);
        benchmark::DoNotOptimize(sink.load());
    }
    return best;
#else
    *isa = "none";
    return 0.0;
#endif
}

struct Limits {
    double read_bytes_per_s = 0.0;
    double fma_flops_per_s = 0.0;
    const char* fma_isa = "none";
};

const Limits& limits() {
    static const Limits measured = [] {
        Limits l;
        l.read_bytes_per_s = measure_read_bandwidth() * 1e9;
        l.fma_flops_per_s = measure_peak_fma(&l.fma_isa);
        std::fprintf(stderr, "machine limits (%d threads): read bandwidth %.2f GB/s, peak FMA (%s) %.1f GFLOP/s\n",
                     bench_threads(), l.read_bytes_per_s / 1e9, l.fma_isa, l.fma_flops_per_s / 1e9);
        return l;
    }();
    return measured;
}

// ---- pools ----

bool check(inf_status status, benchmark::State& state, const char* what) {
    if (status != INF_STATUS_OK) {
        state.SkipWithError((std::string(what) + ": " + inf_last_error()).c_str());
        return false;
    }
    return true;
}

struct BenchPool {
    inf_device* device = nullptr;
    inf_page_pool* pool = nullptr;
    int pages = 0;
    std::string error;
};

void destroy(BenchPool& bp) {
    inf_page_pool_destroy(bp.pool);
    inf_device_destroy(bp.device);
    bp = BenchPool{};
}

// Bytes of one stored K (or V) row of head_dim elements: int8 codes carry one float scale per row.
std::uint64_t row_bytes(inf_dtype dtype, int head_dim) {
    const auto d = static_cast<std::uint64_t>(head_dim);
    return dtype == INF_DTYPE_F32 ? 4 * d : dtype == INF_DTYPE_I8 ? d + 4 : 2 * d;
}

// A pool of about target bytes for (dtype, shape), created and filled (random keys and values through
// inf_page_pool_append).
void create_pool(BenchPool& bp, inf_dtype dtype, const Shape& shape, std::uint64_t target) {
    const std::uint64_t page_bytes = row_bytes(dtype, shape.head_dim) * 2 * static_cast<std::uint64_t>(shape.kv_heads) * kPageSize;
    bp.pages = static_cast<int>(target / page_bytes);
    if (inf_device_create(INF_DEVICE_KIND_CPU, 0, &bp.device) != INF_STATUS_OK) {
        bp.error = inf_last_error();
        return;
    }
    inf_page_pool_config config{};
    config.size = sizeof config;
    config.dtype = dtype;
    config.layers = 1;
    config.kv_heads = shape.kv_heads;
    config.head_dim = shape.head_dim;
    config.page_size = kPageSize;
    config.pages = bp.pages;
    config.logical_page_size = 0;
    if (inf_page_pool_create(bp.device, &config, &bp.pool) != INF_STATUS_OK) {
        bp.error = inf_last_error();
        bp.pool = nullptr;
        return;
    }
    const int chunk_pages = 16;
    const int tokens = chunk_pages * kPageSize;
    std::vector<float> k(static_cast<std::size_t>(tokens) * static_cast<std::size_t>(shape.kv_heads * shape.head_dim));
    std::vector<float> v(k.size());
    std::uint64_t x = 0x9E3779B97F4A7C15ULL;
    const auto next = [&x] {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        return static_cast<float>(static_cast<double>(x >> 40) / static_cast<double>(1ULL << 24) * 2.0 - 1.0);
    };
    std::vector<std::int32_t> page_list(static_cast<std::size_t>(tokens));
    std::vector<std::int32_t> slots(static_cast<std::size_t>(tokens));
    for (int first = 0; first < bp.pages; first += chunk_pages) {
        for (auto& value : k) {
            value = next();
        }
        for (auto& value : v) {
            value = next();
        }
        const int count = std::min(chunk_pages, bp.pages - first) * kPageSize;
        for (int t = 0; t < count; ++t) {
            page_list[static_cast<std::size_t>(t)] = first + t / kPageSize;
            slots[static_cast<std::size_t>(t)] = t % kPageSize;
        }
        if (inf_page_pool_append(bp.pool, 0, count, page_list.data(), slots.data(), k.data(), v.data()) != INF_STATUS_OK) {
            bp.error = inf_last_error();
            return;
        }
    }
}

// The wide rows' pools (one per dtype: 2 GiB f32 / 1 GiB bf16) and the model shape's (bf16 and i8, 1 GiB each) are kept
// for the process; the decode_shape rows share one 512 MiB pool, replaced when the (dtype, shape) changes.
BenchPool& pool_for(inf_dtype dtype, const Shape& shape) {
    static BenchPool wide[4];  // by inf_dtype
    static BenchPool model[2];  // bf16, i8
    static BenchPool other;
    static int other_key = -1;
    const bool is_wide = shape.q_heads == kWide.q_heads && shape.kv_heads == kWide.kv_heads && shape.head_dim == kWide.head_dim;
    const bool is_model = (dtype == INF_DTYPE_BF16 || dtype == INF_DTYPE_I8) && shape.kv_heads == kModel.kv_heads && shape.head_dim == kModel.head_dim;
    BenchPool* bp = &other;
    std::uint64_t target = std::uint64_t{512} << 20;
    if (is_wide) {
        bp = &wide[dtype];
        target = dtype == INF_DTYPE_F32 ? (std::uint64_t{2} << 30) : (std::uint64_t{1} << 30);
    } else if (is_model) {
        bp = &model[dtype == INF_DTYPE_I8 ? 1 : 0];
        target = std::uint64_t{1} << 30;
    } else {
        const int key = static_cast<int>(dtype) * 100000 + shape.kv_heads * 1000 + shape.head_dim;
        if (key != other_key) {
            destroy(other);
            other_key = key;
        }
    }
    if (bp->pool == nullptr && bp->error.empty()) {
        create_pool(*bp, dtype, shape, target);
    }
    return *bp;
}

struct Buffers {
    inf_buffer* q = nullptr;
    inf_buffer* o = nullptr;
    inf_buffer* lse = nullptr;
    ~Buffers() {
        inf_buffer_destroy(q);
        inf_buffer_destroy(o);
        inf_buffer_destroy(lse);
    }
};

// Runs batches (cycling) with q rows of random queries; sets the counters.
void run_batches(benchmark::State& state, BenchPool& bp, const Shape& shape, std::vector<inf_attention_batch>& batches,
                 int rows, double bytes, double flops) {
    limits();  // measured before any timing
    Buffers buffers;
    const std::uint64_t q_bytes = static_cast<std::uint64_t>(rows) * static_cast<std::uint64_t>(shape.q_heads * shape.head_dim) * sizeof(float);
    if (!check(inf_buffer_create(bp.device, q_bytes, &buffers.q), state, "q") ||
        !check(inf_buffer_create(bp.device, q_bytes, &buffers.o), state, "o") ||
        !check(inf_buffer_create(bp.device, static_cast<std::uint64_t>(rows) * static_cast<std::uint64_t>(shape.q_heads) * sizeof(float), &buffers.lse), state, "lse")) {
        return;
    }
    std::vector<float> q(static_cast<std::size_t>(rows) * static_cast<std::size_t>(shape.q_heads * shape.head_dim));
    for (std::size_t i = 0; i < q.size(); ++i) {
        q[i] = static_cast<float>(std::sin(static_cast<double>(i) * 0.37)) * 2.0f;
    }
    if (!check(inf_buffer_write(buffers.q, 0, q.data(), q_bytes), state, "write q")) {
        return;
    }
    // Warm-up call (thread pool start, workspace).
    if (!check(inf_attention_run(bp.pool, 0, &batches[0], buffers.q, buffers.o, buffers.lse), state, "inf_attention_run")) {
        return;
    }
    std::size_t variant = 0;
    const double start = now_seconds();
    for (auto _ : state) {
        const inf_status status = inf_attention_run(bp.pool, 0, &batches[variant], buffers.q, buffers.o, buffers.lse);
        if (status != INF_STATUS_OK) {
            check(status, state, "inf_attention_run");
            break;
        }
        variant = (variant + 1) % batches.size();
    }
    const double seconds = (now_seconds() - start) / static_cast<double>(std::max<benchmark::IterationCount>(1, state.iterations()));
    const Limits& l = limits();
    state.counters["GB/s"] = bytes / seconds / 1e9;
    state.counters["GFLOP/s"] = flops / seconds / 1e9;
    if (l.read_bytes_per_s > 0) {
        state.counters["pct_bw"] = bytes / seconds / l.read_bytes_per_s * 100.0;
    }
    if (l.fma_flops_per_s > 0) {
        state.counters["pct_fma"] = flops / seconds / l.fma_flops_per_s * 100.0;
    }
}

struct BatchArrays {
    std::vector<std::int32_t> q_starts, q_positions, kv_lengths, page_starts, page_ids;
};

// sequences x (rows query rows at the end of a context of context tokens); variant v places the pages at
// (v * needed + ...) % pool pages so successive calls read disjoint memory where the pool allows.
std::vector<inf_attention_batch> make_batches(std::vector<BatchArrays>& storage, int pool_pages, int q_heads,
                                              int sequences, int rows, int context, bool* reused) {
    const int entries = context / kPageSize;
    const std::int64_t needed = static_cast<std::int64_t>(sequences) * entries;
    *reused = needed > pool_pages;
    const int variants = static_cast<int>(std::clamp<std::int64_t>(pool_pages / std::max<std::int64_t>(1, needed), 1, 8));
    storage.assign(static_cast<std::size_t>(variants), BatchArrays{});
    std::vector<inf_attention_batch> batches;
    for (int v = 0; v < variants; ++v) {
        BatchArrays& a = storage[static_cast<std::size_t>(v)];
        a.q_starts.push_back(0);
        a.page_starts.push_back(0);
        for (int s = 0; s < sequences; ++s) {
            for (int r = 0; r < rows; ++r) {
                a.q_positions.push_back(context - rows + r);
            }
            a.q_starts.push_back(a.q_starts.back() + rows);
            a.kv_lengths.push_back(context);
            for (int e = 0; e < entries; ++e) {
                a.page_ids.push_back(static_cast<std::int32_t>((static_cast<std::int64_t>(v) * needed +
                                                                static_cast<std::int64_t>(s) * entries + e) % pool_pages));
            }
            a.page_starts.push_back(a.page_starts.back() + entries);
        }
        inf_attention_batch batch{};
        batch.size = sizeof batch;
        batch.sequences = sequences;
        batch.q_heads = q_heads;
        batch.q_dtype = INF_DTYPE_F32;
        batch.scale = 0.0f;
        batch.q_starts = a.q_starts.data();
        batch.q_positions = a.q_positions.data();
        batch.kv_lengths = a.kv_lengths.data();
        batch.page_starts = a.page_starts.data();
        batch.page_ids = a.page_ids.data();
        batches.push_back(batch);
    }
    return batches;
}

void bench_decode(benchmark::State& state, inf_dtype dtype, const Shape& shape, int batch_size, int context) {
    BenchPool& bp = pool_for(dtype, shape);
    if (bp.pool == nullptr) {
        state.SkipWithError(("page pool: " + bp.error).c_str());
        return;
    }
    std::vector<BatchArrays> storage;
    bool reused = false;
    std::vector<inf_attention_batch> batches = make_batches(storage, bp.pages, shape.q_heads, batch_size, 1, context, &reused);
    const double keys = static_cast<double>(batch_size) * context;
    const double bytes = keys * shape.kv_heads * 2.0 * static_cast<double>(row_bytes(dtype, shape.head_dim));
    const double flops = 4.0 * shape.q_heads * shape.head_dim * keys;
    if (reused) {
        state.SetLabel("KV larger than the pool: pages reused");
    }
    run_batches(state, bp, shape, batches, batch_size, bytes, flops);
}

void bench_prefill(benchmark::State& state, inf_dtype dtype, const Shape& shape, int rows, int context) {
    BenchPool& bp = pool_for(dtype, shape);
    if (bp.pool == nullptr) {
        state.SkipWithError(("page pool: " + bp.error).c_str());
        return;
    }
    std::vector<BatchArrays> storage;
    bool reused = false;
    std::vector<inf_attention_batch> batches = make_batches(storage, bp.pages, shape.q_heads, 1, rows, context, &reused);
    double visible = 0.0;
    for (int r = 0; r < rows; ++r) {
        visible += static_cast<double>(context - rows + r + 1);
    }
    const double flops = 4.0 * shape.q_heads * shape.head_dim * visible;
    const double bytes = static_cast<double>(context) * shape.kv_heads * 2.0 * static_cast<double>(row_bytes(dtype, shape.head_dim));
    run_batches(state, bp, shape, batches, rows, bytes, flops);
}

void bench_machine(benchmark::State& state) {
    const Limits& l = limits();
    for (auto _ : state) {
        benchmark::DoNotOptimize(l.read_bytes_per_s);
    }
    state.counters["read_GB/s"] = l.read_bytes_per_s / 1e9;
    state.counters["fma_GFLOP/s"] = l.fma_flops_per_s / 1e9;
    state.SetLabel(std::string("threads ") + std::to_string(bench_threads()) + ", fma " + l.fma_isa);
}

const char* dtype_name(inf_dtype dtype) {
    return dtype == INF_DTYPE_F32 ? "f32" : dtype == INF_DTYPE_F16 ? "f16" : dtype == INF_DTYPE_I8 ? "i8" : "bf16";
}

struct Registrar {
    Registrar() {
        benchmark::RegisterBenchmark("attention/machine", bench_machine)->Iterations(1);
        for (const inf_dtype dtype : {INF_DTYPE_F32, INF_DTYPE_BF16}) {
            for (const int batch : {1, 8, 32}) {
                for (const int context : {4096, 32768, 131072}) {
                    const std::string name = std::string("attention/cpu_decode/") + dtype_name(dtype) +
                                             "/batch:" + std::to_string(batch) + "/ctx:" + std::to_string(context);
                    benchmark::RegisterBenchmark(name.c_str(), [dtype, batch, context](benchmark::State& state) {
                        bench_decode(state, dtype, kWide, batch, context);
                    })->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(0.3);
                }
            }
        }
        for (const int rows : {512, 2048}) {
            for (const int context : {4096, 32768}) {
                const std::string name = "attention/cpu_prefill/f32/rows:" + std::to_string(rows) + "/ctx:" + std::to_string(context);
                benchmark::RegisterBenchmark(name.c_str(), [rows, context](benchmark::State& state) {
                    bench_prefill(state, INF_DTYPE_F32, kWide, rows, context);
                })->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(0.3);
            }
        }
        for (const inf_dtype dtype : {INF_DTYPE_BF16, INF_DTYPE_I8}) {
            for (const int context : {4096, 32768, 131072}) {
                const std::string name = std::string("attention/model_decode/") + dtype_name(dtype) + "/batch:1/ctx:" + std::to_string(context);
                benchmark::RegisterBenchmark(name.c_str(), [dtype, context](benchmark::State& state) {
                    bench_decode(state, dtype, kModel, 1, context);
                })->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(0.3);
            }
        }
        benchmark::RegisterBenchmark("attention/model_prefill/bf16/rows:2048/ctx:32768", [](benchmark::State& state) {
            bench_prefill(state, INF_DTYPE_BF16, kModel, 2048, 32768);
        })->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(0.3);
        // Grouped by (dtype, head_dim) so the shared pool is rebuilt once per pair.
        for (const inf_dtype dtype : {INF_DTYPE_F32, INF_DTYPE_F16, INF_DTYPE_BF16}) {
            for (const int head_dim : {64, 128}) {
                for (const int group : {1, 4, 8}) {
                    const Shape shape{2 * group, 2, head_dim};
                    const std::string name = std::string("attention/decode_shape/") + dtype_name(dtype) + "/G:" +
                                             std::to_string(group) + "/D:" + std::to_string(head_dim) + "/ctx:32768";
                    benchmark::RegisterBenchmark(name.c_str(), [dtype, shape](benchmark::State& state) {
                        bench_decode(state, dtype, shape, 1, 32768);
                    })->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(0.3);
                }
            }
        }
    }
};

const Registrar registrar;

}  // namespace
