#include "attention/cpu_page_select.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "attention/cpu_isa.h"
#include "core/status.h"
#include "core/thread_pool.h"
#include "kv/dtype.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define INF_SELECT_X86 1
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#else
#define INF_SELECT_X86 0
#endif

namespace inf::cpu {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// out[g] = sum_d max(q[g][d] * mx[d], q[g][d] * mn[d]) for g < groups (q rows D apart).
void score_scalar(const float* q, int groups, int D, const float* mn, const float* mx, float* out) {
    for (int g = 0; g < groups; ++g) {
        const float* qg = q + static_cast<std::size_t>(g) * static_cast<std::size_t>(D);
        float acc = 0.0f;
        for (int d = 0; d < D; ++d) {
            acc += std::max(qg[d] * mx[d], qg[d] * mn[d]);
        }
        out[g] = acc;
    }
}

#if INF_SELECT_X86
// D % 8 == 0.
__attribute__((target("avx2,fma"))) void score_avx2(const float* q, int groups, int D, const float* mn,
                                                     const float* mx, float* out) {
    const std::size_t Dz = static_cast<std::size_t>(D);
    int g = 0;
    for (; g + 4 <= groups; g += 4) {
        __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        for (int d = 0; d < D; d += 8) {
            const __m256 lo = _mm256_loadu_ps(mn + d);
            const __m256 hi = _mm256_loadu_ps(mx + d);
            for (int a = 0; a < 4; ++a) {
                const __m256 qv = _mm256_loadu_ps(q + static_cast<std::size_t>(g + a) * Dz + static_cast<std::size_t>(d));
                acc[a] = _mm256_add_ps(acc[a], _mm256_max_ps(_mm256_mul_ps(qv, hi), _mm256_mul_ps(qv, lo)));
            }
        }
        for (int a = 0; a < 4; ++a) {
            __m128 x = _mm_add_ps(_mm256_castps256_ps128(acc[a]), _mm256_extractf128_ps(acc[a], 1));
            x = _mm_add_ps(x, _mm_movehl_ps(x, x));
            x = _mm_add_ss(x, _mm_movehdup_ps(x));
            out[g + a] = _mm_cvtss_f32(x);
        }
    }
    for (; g < groups; ++g) {
        __m256 acc = _mm256_setzero_ps();
        for (int d = 0; d < D; d += 8) {
            const __m256 qv = _mm256_loadu_ps(q + static_cast<std::size_t>(g) * Dz + static_cast<std::size_t>(d));
            acc = _mm256_add_ps(acc, _mm256_max_ps(_mm256_mul_ps(qv, _mm256_loadu_ps(mx + d)),
                                                   _mm256_mul_ps(qv, _mm256_loadu_ps(mn + d))));
        }
        __m128 x = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
        x = _mm_add_ps(x, _mm_movehl_ps(x, x));
        x = _mm_add_ss(x, _mm_movehdup_ps(x));
        out[g] = _mm_cvtss_f32(x);
    }
}

// D % 16 == 0.
__attribute__((target("avx512f,avx2,fma"))) void score_avx512(const float* q, int groups, int D, const float* mn,
                                                               const float* mx, float* out) {
    const std::size_t Dz = static_cast<std::size_t>(D);
    int g = 0;
    for (; g + 4 <= groups; g += 4) {
        __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
        for (int d = 0; d < D; d += 16) {
            const __m512 lo = _mm512_loadu_ps(mn + d);
            const __m512 hi = _mm512_loadu_ps(mx + d);
            for (int a = 0; a < 4; ++a) {
                const __m512 qv = _mm512_loadu_ps(q + static_cast<std::size_t>(g + a) * Dz + static_cast<std::size_t>(d));
                acc[a] = _mm512_add_ps(acc[a], _mm512_max_ps(_mm512_mul_ps(qv, hi), _mm512_mul_ps(qv, lo)));
            }
        }
        for (int a = 0; a < 4; ++a) {
            out[g + a] = _mm512_reduce_add_ps(acc[a]);
        }
    }
    for (; g < groups; ++g) {
        __m512 acc = _mm512_setzero_ps();
        for (int d = 0; d < D; d += 16) {
            const __m512 qv = _mm512_loadu_ps(q + static_cast<std::size_t>(g) * Dz + static_cast<std::size_t>(d));
            acc = _mm512_add_ps(acc, _mm512_max_ps(_mm512_mul_ps(qv, _mm512_loadu_ps(mx + d)),
                                                   _mm512_mul_ps(qv, _mm512_loadu_ps(mn + d))));
        }
        out[g] = _mm512_reduce_add_ps(acc);
    }
}
#endif

using ScoreFn = void (*)(const float*, int, int, const float*, const float*, float*);

ScoreFn pick_score(int head_dim) {
#if INF_SELECT_X86
    const Isa isa = active_isa();
    if (isa == Isa::avx512 && head_dim % 16 == 0) {
        return score_avx512;
    }
    if (static_cast<int>(isa) >= static_cast<int>(Isa::avx2) && head_dim % 8 == 0) {
        return score_avx2;
    }
#endif
    (void)head_dim;
    return score_scalar;
}

int lists_per_sequence(const inf_page_select_params& p) { return p.per_query_head != 0 ? p.q_heads : p.layer.kv_heads; }

int kept(const inf_page_select_params& p, int s) {
    const int entries = p.page_starts[s + 1] - p.page_starts[s];
    return std::min(entries, std::max(1, p.budget_pages));
}

int max_entries(const inf_page_select_params& p) {
    int widest = 0;
    for (int s = 0; s < p.sequences; ++s) {
        widest = std::max(widest, p.page_starts[s + 1] - p.page_starts[s]);
    }
    return widest;
}

// Floats of one thread's scratch: G query rows, G score rows, one index row (as floats' room).
std::uint64_t thread_floats(const inf_page_select_params& p, int widest) {
    const std::uint64_t G = static_cast<std::uint64_t>(p.q_heads / std::max(1, p.layer.kv_heads));
    return G * static_cast<std::uint64_t>(p.layer.head_dim) + (G + 1) * static_cast<std::uint64_t>(widest) + 16;
}

// Keeps the count best of scores[0, entries) (forced first when >= 0) and writes them ascending to out.
void top_entries(const float* scores, int entries, int count, int forced, std::int32_t* order, std::int32_t* out) {
    if (count >= entries) {
        for (int e = 0; e < entries; ++e) {
            out[e] = e;
        }
        return;
    }
    int n = 0;
    for (int e = 0; e < entries; ++e) {
        if (e != forced) {
            order[n++] = e;
        }
    }
    int want = count;
    int written = 0;
    if (forced >= 0) {
        out[written++] = forced;
        --want;
    }
    if (want > 0) {
        // Higher score first; NaN counts as -inf; ties go to the lower entry (deterministic).
        const auto key = [&](std::int32_t e) {
            const float x = scores[e];
            return x == x ? x : kNegInf;
        };
        const auto better = [&](std::int32_t a, std::int32_t b) {
            const float ka = key(a);
            const float kb = key(b);
            return ka > kb || (ka == kb && a < b);
        };
        std::nth_element(order, order + (want - 1), order + n, better);
        std::copy(order, order + want, out + written);
        written += want;
    }
    std::sort(out, out + written);
}

}  // namespace

std::uint64_t page_select_workspace_bytes(const inf_page_select_params& params) {
    if (params.sequences <= 0) {
        return 0;
    }
    const int widest = max_entries(params);
    const std::uint64_t threads = static_cast<std::uint64_t>(ThreadPool::instance().threads());
    return threads * thread_floats(params, widest) * sizeof(float);
}

void page_select(const inf_page_select_params& params) {
    const inf_kv_layer& layer = params.layer;
    if (params.sequences <= 0) {
        params.head_page_starts[0] = 0;
        return;
    }
    if (layer.summary == nullptr || layer.logical_page_size <= 0 || layer.kv_heads <= 0 ||
        params.q_heads % layer.kv_heads != 0) {
        fail(INF_STATUS_INVALID_ARGUMENT, "cpu page_select: no summaries or unsupported shape");
    }
    const int lists = lists_per_sequence(params);
    std::int32_t* starts = params.head_page_starts;
    starts[0] = 0;
    for (int s = 0; s < params.sequences; ++s) {
        const int count = kept(params, s);
        for (int l = 0; l < lists; ++l) {
            const std::int64_t index = static_cast<std::int64_t>(s) * lists + l;
            starts[index + 1] = starts[index] + count;
        }
    }
    ThreadPool& pool = ThreadPool::instance();
    const int widest = max_entries(params);
    const std::uint64_t per_thread = thread_floats(params, widest);
    const std::uint64_t needed = static_cast<std::uint64_t>(pool.threads()) * per_thread * sizeof(float);
    if (params.workspace == nullptr || params.workspace_bytes < needed) {
        fail(INF_STATUS_INVALID_ARGUMENT, "cpu page_select: workspace of ", params.workspace_bytes, " bytes, needs ", needed);
    }
    const int G = params.q_heads / layer.kv_heads;
    const int D = layer.head_dim;
    const std::size_t Dz = static_cast<std::size_t>(D);
    const int lps = layer.logical_page_size;
    const int subpages = layer.page_size / lps;
    const ScoreFn score = pick_score(D);
    const std::int64_t units = static_cast<std::int64_t>(params.sequences) * layer.kv_heads;
    const auto body = [&](std::int64_t begin, std::int64_t end, int thread) {
        float* base = static_cast<float*>(params.workspace) + static_cast<std::uint64_t>(thread) * per_thread;
        float* qf = base;                                   // [G][D]
        float* scores = qf + static_cast<std::size_t>(G) * Dz;  // [G][widest]
        auto* order = reinterpret_cast<std::int32_t*>(scores + static_cast<std::size_t>(G) * static_cast<std::size_t>(widest));
        float sub_scores[64];
        for (std::int64_t unit = begin; unit < end; ++unit) {
            const int s = static_cast<int>(unit / layer.kv_heads);
            const int h = static_cast<int>(unit % layer.kv_heads);
            const int first = params.page_starts[s];
            const int entries = params.page_starts[s + 1] - first;
            if (entries == 0) {
                continue;
            }
            const std::int64_t kv_length = params.kv_lengths[s];
            const std::size_t row = static_cast<std::size_t>(params.q_rows[s]);
            for (int g = 0; g < G; ++g) {
                const std::size_t at = (row * static_cast<std::size_t>(params.q_heads) + static_cast<std::size_t>(h * G + g)) * Dz;
                float* dst = qf + static_cast<std::size_t>(g) * Dz;
                if (params.q_dtype == INF_DTYPE_F32) {
                    std::memcpy(dst, static_cast<const float*>(params.q) + at, Dz * sizeof(float));
                } else {
                    const auto* src = static_cast<const std::uint16_t*>(params.q) + at;
                    for (std::size_t d = 0; d < Dz; ++d) {
                        dst[d] = params.q_dtype == INF_DTYPE_BF16 ? bf16_to_f32(src[d]) : f16_to_f32(src[d]);
                    }
                }
            }
            int forced = -1;
            for (int e = 0; e < entries; ++e) {
                const std::int64_t pos0 = params.page_positions[first + e];
                const std::int64_t valid = std::min<std::int64_t>(layer.page_size, kv_length - pos0);
                if (forced < 0 && valid > 0 && kv_length - 1 < pos0 + layer.page_size) {  // holds the newest key
                    forced = e;
                }
                for (int g = 0; g < G; ++g) {
                    scores[static_cast<std::size_t>(g) * static_cast<std::size_t>(widest) + static_cast<std::size_t>(e)] = kNegInf;
                }
                if (valid <= 0) {
                    continue;
                }
                const int used = static_cast<int>((valid + lps - 1) / lps);  // logical pages holding keys < kv_length
                const float* summary = layer.summary +
                    (static_cast<std::size_t>(params.page_ids[first + e]) * static_cast<std::size_t>(layer.kv_heads) +
                     static_cast<std::size_t>(h)) * static_cast<std::size_t>(subpages) * 2 * Dz;
                for (int sub = 0; sub < used; ++sub) {
                    const float* mn = summary + static_cast<std::size_t>(sub) * 2 * Dz;
                    for (int g0 = 0; g0 < G; g0 += 64) {
                        const int gn = std::min(64, G - g0);
                        score(qf + static_cast<std::size_t>(g0) * Dz, gn, D, mn, mn + Dz, sub_scores);
                        for (int g = 0; g < gn; ++g) {
                            float& best = scores[static_cast<std::size_t>(g0 + g) * static_cast<std::size_t>(widest) + static_cast<std::size_t>(e)];
                            best = std::max(best, sub_scores[g]);
                        }
                    }
                }
            }
            const int count = kept(params, s);
            if (params.per_query_head != 0) {
                for (int g = 0; g < G; ++g) {
                    const std::int64_t list = static_cast<std::int64_t>(s) * params.q_heads + h * G + g;
                    top_entries(scores + static_cast<std::size_t>(g) * static_cast<std::size_t>(widest), entries, count,
                                forced, order, params.head_page_indices + starts[list]);
                }
            } else {
                for (int g = 1; g < G; ++g) {
                    const float* other = scores + static_cast<std::size_t>(g) * static_cast<std::size_t>(widest);
                    for (int e = 0; e < entries; ++e) {
                        scores[e] = std::max(scores[e], other[e]);
                    }
                }
                const std::int64_t list = static_cast<std::int64_t>(s) * layer.kv_heads + h;
                top_entries(scores, entries, count, forced, order, params.head_page_indices + starts[list]);
            }
        }
    };
    if (units == 1) {
        body(0, 1, 0);
    } else {
        pool.parallel_for(units, body, 1);
    }
}

}  // namespace inf::cpu
