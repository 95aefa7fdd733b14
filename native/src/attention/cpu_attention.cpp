#include "attention/cpu_attention.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "attention/cpu_isa.h"
#include "core/status.h"
#include "core/thread_pool.h"
#include "kv/dtype.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define INF_CPU_X86 1
// GCC 12 reports the intrinsics' deliberate _mm512_undefined_*() operands as maybe-uninitialized.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#else
#define INF_CPU_X86 0
#endif

namespace inf::cpu {

namespace {

// Storage conversions (round to nearest even): kv/dtype.h.

// Stores value as dtype and returns the value as stored.
inline float store_element(void* base, std::size_t index, inf_dtype dtype, float value) {
    switch (dtype) {
    case INF_DTYPE_F32:
        static_cast<float*>(base)[index] = value;
        return value;
    case INF_DTYPE_BF16: {
        const std::uint16_t stored = f32_to_bf16(value);
        static_cast<std::uint16_t*>(base)[index] = stored;
        return bf16_to_f32(stored);
    }
    case INF_DTYPE_I8:
        break;  // whole rows at a time: kv_append
    case INF_DTYPE_F16: {
        const std::uint16_t stored = f32_to_f16(value);
        static_cast<std::uint16_t*>(base)[index] = stored;
        return f16_to_f32(stored);
    }
    }
    return value;
}

// ---- tile kernels ----

constexpr int kKeyBlock = 16;
constexpr int kMaxHeadDim = 256;
constexpr int kMaxTileLanes = 32;

// One tile: query vectors [first, first + count) of (sequence, kv head) in row-major (row, group head)
// order, over entries [entry_begin, entry_end) of its page list.
struct TileJob {
    const inf_attention_params* params;
    int kv_head;
    int group;     // query vectors per row in this tile: the GQA group, or 1 for a per-query-head list
    int head0;     // q head of vector m is head0 + m % group (row q_start + m / group)
    int first;
    int count;
    int q_start;
    int page_base;
    const std::int32_t* entries;  // head_page_indices (relative to page_base) or null: entry e is page_base + e
    int entry_begin;
    int entry_end;
    std::int64_t kv_length;
    bool streaming;           // Λ mask: keys < sink or > q_position - local only
    std::int64_t sink;
    std::int64_t local;
    float* o;    // [total_q][q_heads][D]
    float* lse;  // [total_q][q_heads]
};

struct Scratch {
    float* qt;
    float* ot;
    float* p;
    float* kf;
    float* vf;
};

Scratch& thread_scratch() {
    struct Holder {
        std::unique_ptr<float[]> storage;
        Scratch scratch{};
        Holder() {
            const std::size_t qt = static_cast<std::size_t>(kMaxHeadDim) * kMaxTileLanes;
            const std::size_t pb = static_cast<std::size_t>(kKeyBlock) * kMaxTileLanes;
            const std::size_t kv = static_cast<std::size_t>(kKeyBlock) * kMaxHeadDim;
            storage.reset(new float[2 * qt + pb + 2 * kv + 64]);
            float* base = storage.get();
            scratch.qt = base;
            scratch.ot = scratch.qt + qt;
            scratch.p = scratch.ot + qt;
            scratch.kf = scratch.p + pb;
            scratch.vf = scratch.kf + kv;
        }
    };
    thread_local Holder holder;
    return holder.scratch;
}

std::atomic<bool> g_force_lanes{false};

bool force_lane_kernel() noexcept { return g_force_lanes.load(std::memory_order_relaxed); }

}  // namespace

void set_force_lane_kernel(bool force) noexcept { g_force_lanes.store(force, std::memory_order_relaxed); }

// The same kernel once per instruction set.
#define INF_ISA_NS isa_scalar
#define INF_ISA_LEVEL 0
#define INF_TGT
#include "attention/cpu_attention_kernels.inc"
#undef INF_ISA_NS
#undef INF_ISA_LEVEL
#undef INF_TGT

#if INF_CPU_X86
#define INF_ISA_NS isa_avx2
#define INF_ISA_LEVEL 1
#define INF_TGT __attribute__((target("avx2,fma,f16c")))
#include "attention/cpu_attention_kernels.inc"
#undef INF_ISA_NS
#undef INF_ISA_LEVEL
#undef INF_TGT

#define INF_ISA_NS isa_avx512
#define INF_ISA_LEVEL 2
#define INF_TGT __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
#include "attention/cpu_attention_kernels.inc"
#undef INF_ISA_NS
#undef INF_ISA_LEVEL
#undef INF_TGT
#endif

// ---- ISA selection ----

namespace {

Isa detect_isa() noexcept {
#if INF_CPU_X86
    __builtin_cpu_init();
    // F16C: CPUID.1:ECX bit 29 (clang's __builtin_cpu_supports does not know "f16c"). The builtins check
    // the OS's support of the AVX / AVX-512 register state.
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    const bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & (1U << 29)) != 0;
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
    if (avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl")) {
        return Isa::avx512;
    }
    if (avx2) {
        return Isa::avx2;
    }
#endif
    return Isa::scalar;
}

Isa env_isa(Isa supported) noexcept {
    const char* env = std::getenv("INFINITE_CPU_ISA");
    if (env == nullptr) {
        return supported;
    }
    Isa wanted = supported;
    if (std::strcmp(env, "scalar") == 0) {
        wanted = Isa::scalar;
    } else if (std::strcmp(env, "avx2") == 0) {
        wanted = Isa::avx2;
    } else if (std::strcmp(env, "avx512") == 0) {
        wanted = Isa::avx512;
    }
    return static_cast<int>(wanted) < static_cast<int>(supported) ? wanted : supported;
}

std::atomic<int> g_override{-1};

}  // namespace

Isa supported_isa() noexcept {
    static const Isa isa = detect_isa();
    return isa;
}

Isa active_isa() noexcept {
    const int forced = g_override.load(std::memory_order_relaxed);
    if (forced >= 0) {
        return static_cast<int>(supported_isa()) < forced ? supported_isa() : static_cast<Isa>(forced);
    }
    static const Isa isa = env_isa(supported_isa());
    return isa;
}

void set_isa_override(const Isa* isa) noexcept {
    g_override.store(isa == nullptr ? -1 : static_cast<int>(*isa), std::memory_order_relaxed);
}

const char* isa_name(Isa isa) noexcept {
    switch (isa) {
    case Isa::avx512:
        return "avx512";
    case Isa::avx2:
        return "avx2";
    default:
        return "scalar";
    }
}

// ---- kv_append ----

void kv_append(const inf_kv_append_params& params) {
    const inf_kv_layer& layer = params.layer;
    const int heads = layer.kv_heads;
    const std::size_t D = static_cast<std::size_t>(layer.head_dim);
    const int lps = layer.logical_page_size;
    const bool summaries = lps > 0 && layer.summary != nullptr;
    const std::size_t subpages = summaries ? static_cast<std::size_t>(layer.page_size / lps) : 0;
    const bool int8 = layer.dtype == INF_DTYPE_I8;
    const auto body = [&](std::int64_t begin, std::int64_t end, int) {
        float dequantised[kMaxHeadDim];
        for (std::int64_t h64 = begin; h64 < end; ++h64) {
            const std::size_t h = static_cast<std::size_t>(h64);
            for (int i = 0; i < params.tokens; ++i) {
                const std::size_t page = static_cast<std::size_t>(params.pages[i]);
                const int slot = params.slots[i];
                const std::size_t src = (static_cast<std::size_t>(i) * static_cast<std::size_t>(heads) + h) * D;
                const std::size_t dst =
                    ((page * static_cast<std::size_t>(heads) + h) * static_cast<std::size_t>(layer.page_size) +
                     static_cast<std::size_t>(slot)) * D;
                float* mins = nullptr;
                float* maxs = nullptr;
                bool restart = false;
                if (summaries) {
                    const std::size_t sub = static_cast<std::size_t>(slot / lps);
                    mins = layer.summary + (((page * static_cast<std::size_t>(heads) + h) * subpages + sub) * 2) * D;
                    maxs = mins + D;
                    restart = slot % lps == 0;
                }
                if (int8) {
                    // A row at a time (its scale is its max); the summary sees the dequantised key, what
                    // attention reads, so the selection bound holds for it.
                    auto* k_codes = static_cast<std::int8_t*>(layer.k) + dst;
                    const float k_scale = quantize_i8_row(params.k + src, layer.head_dim, k_codes);
                    layer.k_scale[dst / D] = k_scale;
                    layer.v_scale[dst / D] = quantize_i8_row(params.v + src, layer.head_dim, static_cast<std::int8_t*>(layer.v) + dst);
                    for (std::size_t d = 0; d < D; ++d) {
                        dequantised[d] = static_cast<float>(k_codes[d]) * k_scale;
                    }
                }
                for (std::size_t d = 0; d < D; ++d) {
                    float key = 0.0f;
                    if (int8) {
                        key = dequantised[d];
                    } else {
                        key = store_element(layer.k, dst + d, layer.dtype, params.k[src + d]);
                        store_element(layer.v, dst + d, layer.dtype, params.v[src + d]);
                    }
                    if (mins != nullptr) {
                        if (restart) {
                            mins[d] = key;
                            maxs[d] = key;
                        } else {
                            mins[d] = std::min(mins[d], key);
                            maxs[d] = std::max(maxs[d], key);
                        }
                    }
                }
            }
        }
    };
    if (static_cast<std::int64_t>(params.tokens) * heads * layer.head_dim < 65536) {
        body(0, heads, 0);
    } else {
        ThreadPool::instance().parallel_for(heads, body, 1);
    }
}

// ---- attention ----

namespace {

int max_tile_lanes(Isa isa) {
#if INF_CPU_X86
    if (isa == Isa::avx512) {
        return isa_avx512::kMaxLanes;
    }
    if (isa == Isa::avx2) {
        return isa_avx2::kMaxLanes;
    }
#endif
    (void)isa;
    return isa_scalar::kMaxLanes;
}

void run_tile(Isa isa, const TileJob& job, Scratch& scratch) {
#if INF_CPU_X86
    if (isa == Isa::avx512) {
        isa_avx512::run_tile(job, scratch);
        return;
    }
    if (isa == Isa::avx2) {
        isa_avx2::run_tile(job, scratch);
        return;
    }
#endif
    (void)isa;
    isa_scalar::run_tile(job, scratch);
}

constexpr std::int64_t kMinSplitKeys = 256;  // fewest keys a split chunk covers

// Parts the page lists are split into (1: no split). A pure function of the shape and the threads.
int split_parts(const inf_attention_params& params, int threads) {
    if (threads <= 1 || params.sequences <= 0 || params.max_entries <= 0 || params.layer.kv_heads <= 0) {
        return 1;
    }
    const bool per_q = params.head_lists_per_query_head != 0 && params.head_page_starts != nullptr;
    const std::int64_t group = per_q ? 1 : std::max(1, params.q_heads / params.layer.kv_heads);
    const std::int64_t lists = per_q ? params.q_heads : params.layer.kv_heads;
    const std::int64_t tiles = std::max<std::int64_t>(1, (static_cast<std::int64_t>(params.max_q) * group + kMaxTileLanes - 1) / kMaxTileLanes);
    const std::int64_t units = static_cast<std::int64_t>(params.sequences) * lists * tiles;
    const std::int64_t wanted = 4 * static_cast<std::int64_t>(threads);
    if (units >= wanted) {
        return 1;
    }
    const std::int64_t keys = static_cast<std::int64_t>(params.max_entries) * params.layer.page_size;
    const std::int64_t by_length = std::min<std::int64_t>(keys / kMinSplitKeys, params.max_entries);
    const std::int64_t parts = std::min<std::int64_t>({(wanted + units - 1) / units, by_length, 64});
    return static_cast<int>(std::max<std::int64_t>(1, parts));
}

// Merges rows [begin, end); o_out / lse_out may be part 0's arrays (each element is read before written).
void merge_rows(int parts, std::int64_t begin, std::int64_t end, int head_dim, const float* const* o_parts,
                const float* const* lse_parts, float* o_out, float* lse_out) {
    const std::size_t D = static_cast<std::size_t>(head_dim);
    float weights[64];
    std::vector<float> big_weights;
    float* w = weights;
    if (parts > 64) {
        big_weights.resize(static_cast<std::size_t>(parts));
        w = big_weights.data();
    }
    for (std::int64_t r = begin; r < end; ++r) {
        const std::size_t row = static_cast<std::size_t>(r);
        float mx = -INFINITY;
        for (int i = 0; i < parts; ++i) {
            const float s = lse_parts[i][row];
            mx = std::max(mx, s);
        }
        float* out = o_out + row * D;
        if (!(mx > -INFINITY)) {
            for (std::size_t d = 0; d < D; ++d) {
                out[d] = 0.0f;
            }
            lse_out[row] = -INFINITY;
            continue;
        }
        double sum = 0.0;
        for (int i = 0; i < parts; ++i) {
            const float s = lse_parts[i][row];
            w[i] = s > -INFINITY ? std::exp(s - mx) : 0.0f;
            sum += static_cast<double>(w[i]);
        }
        const float inv = static_cast<float>(1.0 / sum);
        for (int i = 0; i < parts; ++i) {
            w[i] *= inv;
        }
        for (std::size_t d = 0; d < D; ++d) {
            float acc = 0.0f;
            for (int i = 0; i < parts; ++i) {
                if (w[i] != 0.0f) {
                    acc += w[i] * o_parts[i][row * D + d];
                }
            }
            out[d] = acc;
        }
        lse_out[row] = mx + static_cast<float>(std::log(sum));
    }
}

}  // namespace

std::uint64_t attention_workspace_bytes(const inf_attention_params& params) {
    const int parts = split_parts(params, ThreadPool::instance().threads());
    if (parts <= 1) {
        return 0;
    }
    const std::uint64_t rows = static_cast<std::uint64_t>(params.total_q) * static_cast<std::uint64_t>(params.q_heads);
    return static_cast<std::uint64_t>(parts) * rows * (static_cast<std::uint64_t>(params.layer.head_dim) + 1) * sizeof(float);
}

void attention(const inf_attention_params& params) {
    const inf_kv_layer& layer = params.layer;
    if (params.sequences <= 0 || params.total_q <= 0 || params.q_heads <= 0) {
        return;
    }
    if (layer.head_dim <= 0 || layer.head_dim > kMaxHeadDim || layer.kv_heads <= 0 || params.q_heads % layer.kv_heads != 0) {
        fail(INF_STATUS_INVALID_ARGUMENT, "cpu attention: unsupported shape (head_dim ", layer.head_dim, ", q_heads ",
             params.q_heads, ", kv_heads ", layer.kv_heads, ")");
    }
    ThreadPool& pool = ThreadPool::instance();
    const Isa isa = active_isa();
    const int parts = split_parts(params, pool.threads());
    const std::uint64_t rows = static_cast<std::uint64_t>(params.total_q) * static_cast<std::uint64_t>(params.q_heads);
    float* part_o = nullptr;
    float* part_lse = nullptr;
    if (parts > 1) {
        const std::uint64_t needed = static_cast<std::uint64_t>(parts) * rows * (static_cast<std::uint64_t>(layer.head_dim) + 1) * sizeof(float);
        if (params.workspace == nullptr || params.workspace_bytes < needed) {
            fail(INF_STATUS_INVALID_ARGUMENT, "cpu attention: workspace of ", params.workspace_bytes, " bytes, needs ", needed);
        }
        part_o = static_cast<float*>(params.workspace);
        part_lse = part_o + static_cast<std::uint64_t>(parts) * rows * static_cast<std::uint64_t>(layer.head_dim);
    }
    const int group = params.q_heads / layer.kv_heads;
    // Per-query-head lists: a tile holds rows of one q head (its own pages); else a tile holds the
    // (row, q head) vectors of one KV head's group, which share the head's pages (K/V read once).
    const bool per_q = params.head_lists_per_query_head != 0 && params.head_page_starts != nullptr;
    const int vgroup = per_q ? 1 : group;
    const int lists = per_q ? params.q_heads : layer.kv_heads;
    const int lanes = max_tile_lanes(isa);
    const std::int64_t tiles = std::max<std::int64_t>(1, (static_cast<std::int64_t>(params.max_q) * vgroup + lanes - 1) / lanes);
    const std::int64_t units = static_cast<std::int64_t>(params.sequences) * lists * tiles * parts;
    // With Λ-streaming heads, a sequence's dense lists are handed out before its streaming ones (which
    // read only the sinks and the local band): the long tiles start first and the short ones fill the
    // threads' tails, instead of a dense tile starting last on one thread while the others idle.
    std::vector<int> list_order;
    if (params.streaming_heads != nullptr) {
        list_order.reserve(static_cast<std::size_t>(lists));
        for (int pass = 0; pass < 2; ++pass) {
            for (int list = 0; list < lists; ++list) {
                const int h = per_q ? list / group : list;
                if ((params.streaming_heads[h] != 0) == (pass == 1)) {
                    list_order.push_back(list);
                }
            }
        }
    }
    const auto body = [&](std::int64_t begin, std::int64_t end, int) {
        Scratch& scratch = thread_scratch();
        for (std::int64_t unit = begin; unit < end; ++unit) {
            std::int64_t rest = unit;
            const int part = static_cast<int>(rest % parts);
            rest /= parts;
            const int tile = static_cast<int>(rest % tiles);
            rest /= tiles;
            const int slot = static_cast<int>(rest % lists);
            const int list = list_order.empty() ? slot : list_order[static_cast<std::size_t>(slot)];
            const int s = static_cast<int>(rest / lists);
            const int h = per_q ? list / group : list;
            const int q_start = params.q_starts[s];
            const int vectors = (params.q_starts[s + 1] - q_start) * vgroup;
            const int first = tile * lanes;
            if (first >= vectors) {
                continue;
            }
            TileJob job{};
            job.params = &params;
            job.kv_head = h;
            job.group = vgroup;
            job.head0 = per_q ? list : h * group;
            job.first = first;
            job.count = std::min(lanes, vectors - first);
            job.q_start = q_start;
            job.page_base = params.page_starts[s];
            int e0 = 0;
            int e1 = params.page_starts[s + 1] - params.page_starts[s];
            if (params.head_page_starts != nullptr) {
                const int index = s * lists + list;
                job.entries = params.head_page_indices;
                e0 = params.head_page_starts[index];
                e1 = params.head_page_starts[index + 1];
            }
            const std::int64_t count = e1 - e0;
            job.entry_begin = e0 + static_cast<int>(count * part / parts);
            job.entry_end = e0 + static_cast<int>(count * (part + 1) / parts);
            job.kv_length = params.kv_lengths[s];
            job.streaming = params.streaming_heads != nullptr && params.streaming_heads[h] != 0;
            job.sink = params.sink_tokens;
            job.local = params.local_tokens;
            if (parts > 1) {
                job.o = part_o + static_cast<std::uint64_t>(part) * rows * static_cast<std::uint64_t>(layer.head_dim);
                job.lse = part_lse + static_cast<std::uint64_t>(part) * rows;
            } else {
                job.o = params.o;
                job.lse = params.lse;
            }
            run_tile(isa, job, scratch);
        }
    };
    pool.parallel_for(units, body, 1);
    if (parts > 1) {
        const float* o_parts[64];
        const float* lse_parts[64];
        for (int i = 0; i < parts; ++i) {
            o_parts[i] = part_o + static_cast<std::uint64_t>(i) * rows * static_cast<std::uint64_t>(layer.head_dim);
            lse_parts[i] = part_lse + static_cast<std::uint64_t>(i) * rows;
        }
        const auto merge = [&](std::int64_t begin, std::int64_t end, int) {
            merge_rows(parts, begin, end, layer.head_dim, o_parts, lse_parts, params.o, params.lse);
        };
        pool.parallel_for(static_cast<std::int64_t>(rows), merge);
    }
}

void attention_merge(const inf_attention_merge_params& params) {
    if (params.rows <= 0 || params.parts <= 0) {
        return;
    }
    const auto merge = [&](std::int64_t begin, std::int64_t end, int) {
        merge_rows(params.parts, begin, end, params.head_dim, params.o_parts, params.lse_parts, params.o_out,
                   params.lse_out);
    };
    if (params.rows * params.head_dim * params.parts < 65536) {
        merge(0, params.rows, 0);
    } else {
        ThreadPool::instance().parallel_for(params.rows, merge);
    }
}

}  // namespace inf::cpu
