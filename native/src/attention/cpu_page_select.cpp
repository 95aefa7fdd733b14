#include "attention/cpu_page_select.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "attention/cpu_isa.h"
#include "core/status.h"
#include "core/thread_pool.h"
#include "kv/dtype.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
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

// How a summary box is stored (inf_kv_layer.summary_bits): float32, bfloat16 bits, or int8 codes whose
// scale the caller applies to the finished sum (scale >= 0, so it commutes with the max).
enum class Fmt { f32, bf16, i8 };

// Float32 summaries: out[g] = sum_d max(q[g][d] * mx[d], q[g][d] * mn[d]) for g < groups (q rows D apart).
// Compact summaries use the split form below; the float32 kernels are kept as they were, so that
// summary_bits 32 selects exactly what it always did.
void score_scalar(const float* q, int groups, int D, const void* mn_, const void* mx_, float* out) {
    const auto* mn = static_cast<const float*>(mn_);
    const auto* mx = static_cast<const float*>(mx_);
    for (int g = 0; g < groups; ++g) {
        const float* qg = q + static_cast<std::size_t>(g) * static_cast<std::size_t>(D);
        float acc = 0.0f;
        for (int d = 0; d < D; ++d) {
            acc += std::max(qg[d] * mx[d], qg[d] * mn[d]);
        }
        out[g] = acc;
    }
}

// Compact summaries, split form: q row g is [2][D], q+ = max(q, 0) then q- = min(q, 0), and
// out[g] = sum_d q+[d] * mx[d] + q-[d] * mn[d], the same bound (lo <= hi) with two FMAs per value instead
// of two products, a max and an add: the selector stays memory-light once its bytes shrink. (An empty
// box, +inf / -inf, gives NaN here, which ranks as -inf: an unwritten logical page never wins.)
template <Fmt F>
float load_scalar(const void* values, int d) {
    if constexpr (F == Fmt::bf16) {
        return bf16_to_f32(static_cast<const std::uint16_t*>(values)[d]);
    } else {
        return static_cast<float>(static_cast<const std::int8_t*>(values)[d]);
    }
}

// The logical pages of one (page, head) in a compact form: box sub's min values, its max values, and its
// scale (int8; 1 for bf16, exact). Boxes are 2 * D values apart; int8 scales are contiguous per head.
template <Fmt F>
struct PageBoxes {
    static constexpr std::size_t kBytes = F == Fmt::bf16 ? 2 : 1;
    const void* box0;
    int D;
    const float* scales;
    const void* min(int sub) const noexcept {
        return static_cast<const unsigned char*>(box0) + static_cast<std::size_t>(sub) * 2 * static_cast<std::size_t>(D) * kBytes;
    }
    const void* max(int sub) const noexcept {
        return static_cast<const unsigned char*>(min(sub)) + static_cast<std::size_t>(D) * kBytes;
    }
    float scale(int sub) const noexcept { return F == Fmt::i8 ? scales[sub] : 1.0f; }
};

// best = max(best, x), NaN never winning (as the float32 path's std::max).
inline void keep_max(float& best, float x) noexcept {
    if (x > best) {
        best = x;
    }
}

template <Fmt F>
void split_scalar(const float* q, int groups, int D, const void* box0, int used, const float* scales, float* out) {
    const PageBoxes<F> boxes{box0, D, scales};
    for (int g = 0; g < groups; ++g) {
        out[g] = -std::numeric_limits<float>::infinity();
    }
    for (int sub = 0; sub < used; ++sub) {
        const void* mn = boxes.min(sub);
        const void* mx = boxes.max(sub);
        for (int g = 0; g < groups; ++g) {
            const float* pos = q + static_cast<std::size_t>(g) * 2 * static_cast<std::size_t>(D);
            const float* neg = pos + D;
            float acc = 0.0f;
            for (int d = 0; d < D; ++d) {
                acc = std::fma(pos[d], load_scalar<F>(mx, d), acc);
                acc = std::fma(neg[d], load_scalar<F>(mn, d), acc);
            }
            keep_max(out[g], acc * boxes.scale(sub));
        }
    }
}

#if INF_SELECT_X86
// D % 8 == 0.
__attribute__((target("avx2,fma"))) void score_avx2(const float* q, int groups, int D, const void* mn_,
                                                     const void* mx_, float* out) {
    const auto* mn = static_cast<const float*>(mn_);
    const auto* mx = static_cast<const float*>(mx_);
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

__attribute__((target("avx2,fma"))) inline float hsum256(__m256 v) {
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
}

// 8 compact summary values from d on, widened to float32 (bf16: the bits shifted into the high half).
template <Fmt F>
__attribute__((target("avx2,fma"))) inline __m256 load8(const void* values, int d) {
    if constexpr (F == Fmt::bf16) {
        const __m128i bits = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const std::uint16_t*>(values) + d));
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(bits), 16));
    } else {
        const __m128i codes = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(static_cast<const std::int8_t*>(values) + d));
        return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(codes));
    }
}

// Split form, D % 8 == 0. Two accumulators per row (hi and lo terms) so the FMA chains overlap.
template <Fmt F>
__attribute__((target("avx2,fma"))) void split_avx2(const float* q, int groups, int D, const void* box0, int used,
                                                     const float* scales, float* out) {
    const PageBoxes<F> boxes{box0, D, scales};
    const std::size_t row = 2 * static_cast<std::size_t>(D);
    for (int g = 0; g < groups; ++g) {
        out[g] = -std::numeric_limits<float>::infinity();
    }
    for (int sub = 0; sub < used; ++sub) {
        const void* mn = boxes.min(sub);
        const void* mx = boxes.max(sub);
        const float scale = boxes.scale(sub);
        int g = 0;
        for (; g + 4 <= groups; g += 4) {
            __m256 up[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
            __m256 down[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
            for (int d = 0; d < D; d += 8) {
                const __m256 lo = load8<F>(mn, d);
                const __m256 hi = load8<F>(mx, d);
                for (int a = 0; a < 4; ++a) {
                    const float* pos = q + static_cast<std::size_t>(g + a) * row + static_cast<std::size_t>(d);
                    up[a] = _mm256_fmadd_ps(_mm256_loadu_ps(pos), hi, up[a]);
                    down[a] = _mm256_fmadd_ps(_mm256_loadu_ps(pos + D), lo, down[a]);
                }
            }
            for (int a = 0; a < 4; ++a) {
                keep_max(out[g + a], scale * hsum256(_mm256_add_ps(up[a], down[a])));
            }
        }
        for (; g < groups; ++g) {
            __m256 up = _mm256_setzero_ps();
            __m256 down = _mm256_setzero_ps();
            for (int d = 0; d < D; d += 8) {
                const float* pos = q + static_cast<std::size_t>(g) * row + static_cast<std::size_t>(d);
                up = _mm256_fmadd_ps(_mm256_loadu_ps(pos), load8<F>(mx, d), up);
                down = _mm256_fmadd_ps(_mm256_loadu_ps(pos + D), load8<F>(mn, d), down);
            }
            keep_max(out[g], scale * hsum256(_mm256_add_ps(up, down)));
        }
    }
}

// D % 16 == 0.
__attribute__((target("avx512f,avx2,fma"))) void score_avx512(const float* q, int groups, int D, const void* mn_,
                                                               const void* mx_, float* out) {
    const auto* mn = static_cast<const float*>(mn_);
    const auto* mx = static_cast<const float*>(mx_);
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

template <Fmt F>
__attribute__((target("avx512f,avx2,fma"))) inline __m512 load16(const void* values, int d) {
    if constexpr (F == Fmt::bf16) {
        const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const std::uint16_t*>(values) + d));
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(bits), 16));
    } else {
        const __m128i codes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const std::int8_t*>(values) + d));
        return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(codes));
    }
}

// Split form, D % 16 == 0.
template <Fmt F>
__attribute__((target("avx512f,avx2,fma"))) void split_avx512(const float* q, int groups, int D, const void* box0,
                                                               int used, const float* scales, float* out) {
    const PageBoxes<F> boxes{box0, D, scales};
    const std::size_t row = 2 * static_cast<std::size_t>(D);
    for (int g = 0; g < groups; ++g) {
        out[g] = -std::numeric_limits<float>::infinity();
    }
    for (int sub = 0; sub < used; ++sub) {
        const void* mn = boxes.min(sub);
        const void* mx = boxes.max(sub);
        const float scale = boxes.scale(sub);
        int g = 0;
        for (; g + 4 <= groups; g += 4) {
            __m512 up[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
            __m512 down[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
            for (int d = 0; d < D; d += 16) {
                const __m512 lo = load16<F>(mn, d);
                const __m512 hi = load16<F>(mx, d);
                for (int a = 0; a < 4; ++a) {
                    const float* pos = q + static_cast<std::size_t>(g + a) * row + static_cast<std::size_t>(d);
                    up[a] = _mm512_fmadd_ps(_mm512_loadu_ps(pos), hi, up[a]);
                    down[a] = _mm512_fmadd_ps(_mm512_loadu_ps(pos + D), lo, down[a]);
                }
            }
            for (int a = 0; a < 4; ++a) {
                keep_max(out[g + a], scale * _mm512_reduce_add_ps(_mm512_add_ps(up[a], down[a])));
            }
        }
        for (; g < groups; ++g) {
            __m512 up = _mm512_setzero_ps();
            __m512 down = _mm512_setzero_ps();
            for (int d = 0; d < D; d += 16) {
                const float* pos = q + static_cast<std::size_t>(g) * row + static_cast<std::size_t>(d);
                up = _mm512_fmadd_ps(_mm512_loadu_ps(pos), load16<F>(mx, d), up);
                down = _mm512_fmadd_ps(_mm512_loadu_ps(pos + D), load16<F>(mn, d), down);
            }
            keep_max(out[g], scale * _mm512_reduce_add_ps(_mm512_add_ps(up, down)));
        }
    }
}

// ---- int8 summaries with AVX-512 VNNI ----------------------------------------------------------------
// The selector reads every summary byte once per (sequence, KV head); with int8 codes its float loop
// (widen, convert, two FMAs per value and query row) ran far below memory speed. Here the query row is
// quantised to bytes too and each box costs byte dot products (vpdpbusd: 64 products per instruction).
// Row g holds, after its float split form [q+][q-] (2D floats, the fallback), the bytes
// [2 round(|q-| / s)][2 round(q+ / s)] (2D bytes, in the order of the box's [min][max] codes; the rounded
// values are at most 127, so doubled they still fit a byte) and s (one float). With c the box's codes:
//   2 (q+ . max - |q-| . min) / s  ~  sum(bytes[max] * c[max]) + sum(bytes[min] * -c[min])
// and rounding q moves each term by at most s/2 * |c|: adding sum(|c|) (s/2 * |c| doubled) keeps
// scale * s / 2 * (that sum) an upper bound of the decoded box's bound, and so of every key.

bool vnni_supported() noexcept {
    static const bool yes = [] {
        unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
        return __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) != 0 && (ecx & (1U << 11)) != 0;
    }();
    return yes;
}

// Floats of one query row in the VNNI form (D % 64 == 0).
constexpr std::size_t vnni_row_floats(int D) noexcept { return 2 * static_cast<std::size_t>(D) + static_cast<std::size_t>(D) / 2 + 1; }

// Writes the byte form and its step after the float split form already in row (see above). A row whose
// step is not a positive finite number (a zero or non-finite query) gets step NaN: scored in floats.
void vnni_quantise_row(float* row, int D) noexcept {
    const float* pos = row;
    const float* neg = row + D;
    float m = 0.0f;
    for (int d = 0; d < D; ++d) {
        m = std::max({m, pos[d], -neg[d]});
    }
    const float step = m / 127.0f;
    auto* bytes = reinterpret_cast<std::uint8_t*>(row + 2 * static_cast<std::size_t>(D));
    float* step_out = row + 2 * static_cast<std::size_t>(D) + static_cast<std::size_t>(D) / 2;
    if (!(step > 0.0f) || !std::isfinite(step)) {
        *step_out = std::numeric_limits<float>::quiet_NaN();
        return;
    }
    for (int d = 0; d < D; ++d) {
        bytes[d] = static_cast<std::uint8_t>(2.0f * std::min(127.0f, std::nearbyint(-neg[d] / step)));
        bytes[D + d] = static_cast<std::uint8_t>(2.0f * std::min(127.0f, std::nearbyint(pos[d] / step)));
    }
    *step_out = step;
}

// One row's exact float score of one int8 box (the fallback for NaN steps and infinite box scales).
float i8_box_in_floats(const float* row, int D, const std::int8_t* codes, float scale) noexcept {
    float acc = 0.0f;
    for (int d = 0; d < D; ++d) {
        acc = std::fma(row[d], static_cast<float>(codes[D + d]), acc);
        acc = std::fma(row[D + d], static_cast<float>(codes[d]), acc);
    }
    return acc * scale;
}

// The 16 horizontal sums of v[0..15] in one vector, lane i = sum of v[i] (45 instructions instead of 16
// reductions of ~10 each): pairs interleaved within 128-bit lanes, then quads, then across the lanes.
__attribute__((target("avx512f,avx512bw"))) inline __m512i sums16(const __m512i* v) noexcept {
    __m512i a[8];
    for (int i = 0; i < 8; ++i) {
        a[i] = _mm512_add_epi32(_mm512_unpacklo_epi32(v[2 * i], v[2 * i + 1]), _mm512_unpackhi_epi32(v[2 * i], v[2 * i + 1]));
    }
    __m512i b[4];
    for (int j = 0; j < 4; ++j) {
        b[j] = _mm512_add_epi32(_mm512_unpacklo_epi64(a[2 * j], a[2 * j + 1]), _mm512_unpackhi_epi64(a[2 * j], a[2 * j + 1]));
    }
    const __m512i e0 = _mm512_add_epi32(_mm512_shuffle_i32x4(b[0], b[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                        _mm512_shuffle_i32x4(b[0], b[1], _MM_SHUFFLE(3, 1, 3, 1)));
    const __m512i e1 = _mm512_add_epi32(_mm512_shuffle_i32x4(b[2], b[3], _MM_SHUFFLE(2, 0, 2, 0)),
                                        _mm512_shuffle_i32x4(b[2], b[3], _MM_SHUFFLE(3, 1, 3, 1)));
    return _mm512_add_epi32(_mm512_shuffle_i32x4(e0, e1, _MM_SHUFFLE(2, 0, 2, 0)),
                            _mm512_shuffle_i32x4(e0, e1, _MM_SHUFFLE(3, 1, 3, 1)));
}

// Vectors of partial sums waiting for their horizontal sums, 16 at a time: out[row] keeps the max of
// factor * sum. (Members, not a lambda: GCC does not give a lambda its function's target attribute.)
struct PendingSums {
    __m512i vectors[16];
    float factor[16];
    int row[16];
    int n = 0;

    __attribute__((target("avx512f,avx512bw"))) void add(__m512i v, float f, int r, float* out) noexcept {
        vectors[n] = v;
        factor[n] = f;
        row[n] = r;
        if (++n == 16) {
            flush(out);
        }
    }

    __attribute__((target("avx512f,avx512bw"))) void flush(float* out) noexcept {
        if (n == 0) {
            return;
        }
        for (int i = n; i < 16; ++i) {
            vectors[i] = _mm512_setzero_si512();
        }
        alignas(64) std::int32_t sums[16];
        _mm512_store_si512(sums, sums16(vectors));
        for (int i = 0; i < n; ++i) {
            keep_max(out[row[i]], factor[i] * static_cast<float>(sums[i]));
        }
        n = 0;
    }
};

// D % 64 == 0. Each (box, row) pair leaves one vector of partial sums; 16 of them are summed at once.
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void split_vnni(const float* q, int groups, int D,
                                                                         const void* box0, int used,
                                                                         const float* scales, float* out) {
    const std::size_t row = vnni_row_floats(D);
    const std::size_t values = 2 * static_cast<std::size_t>(D);
    const std::size_t step_at = values + static_cast<std::size_t>(D) / 2;
    const __m512i ones = _mm512_set1_epi8(1);
    for (int g = 0; g < groups; ++g) {
        out[g] = -std::numeric_limits<float>::infinity();
    }
    PendingSums pending;
    for (int sub = 0; sub < used; ++sub) {
        const auto* codes = static_cast<const std::int8_t*>(box0) + static_cast<std::size_t>(sub) * values;
        const float scale = scales[sub];
        if (!(scale < std::numeric_limits<float>::infinity())) {  // empty box or an infinite key
            for (int g = 0; g < groups; ++g) {
                keep_max(out[g], i8_box_in_floats(q + static_cast<std::size_t>(g) * row, D, codes, scale));
            }
            continue;
        }
        // The box once for every row: negated min codes, max codes (D <= 256: at most 4 chunks each), and
        // the vector of sum(|c|) partials every row's vector starts from.
        const int chunks = D / 64;
        __m512i neg_min[4];
        __m512i max_codes[4];
        __m512i magnitude = _mm512_setzero_si512();
        for (int c = 0; c < chunks; ++c) {
            const __m512i mn = _mm512_loadu_si512(codes + c * 64);
            max_codes[c] = _mm512_loadu_si512(codes + D + c * 64);
            neg_min[c] = _mm512_sub_epi8(_mm512_setzero_si512(), mn);
            magnitude = _mm512_dpbusd_epi32(magnitude, _mm512_abs_epi8(mn), ones);
            magnitude = _mm512_dpbusd_epi32(magnitude, _mm512_abs_epi8(max_codes[c]), ones);
        }
        for (int g = 0; g < groups; ++g) {
            const float* r = q + static_cast<std::size_t>(g) * row;
            const float step = r[step_at];
            if (step != step) {
                keep_max(out[g], i8_box_in_floats(r, D, codes, scale));
                continue;
            }
            const auto* bytes = reinterpret_cast<const std::uint8_t*>(r + values);
            __m512i acc = magnitude;
            for (int c = 0; c < chunks; ++c) {
                acc = _mm512_dpbusd_epi32(acc, _mm512_loadu_si512(bytes + c * 64), neg_min[c]);
                acc = _mm512_dpbusd_epi32(acc, _mm512_loadu_si512(bytes + D + c * 64), max_codes[c]);
            }
            pending.add(acc, 0.5f * scale * step, g, out);
        }
    }
    pending.flush(out);
}

#endif

using ScoreFn = void (*)(const float*, int, int, const void*, const void*, float*);
// Compact forms, all logical pages of one (page, head) per call: (q, groups, D, box0, used, scales, out).
using PageFn = void (*)(const float*, int, int, const void*, int, const float*, float*);

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

template <Fmt F>
PageFn pick_page_for(int head_dim) {
#if INF_SELECT_X86
    const Isa isa = active_isa();
    if (isa == Isa::avx512 && head_dim % 16 == 0) {
        return split_avx512<F>;
    }
    if (static_cast<int>(isa) >= static_cast<int>(Isa::avx2) && head_dim % 8 == 0) {
        return split_avx2<F>;
    }
#endif
    (void)head_dim;
    return split_scalar<F>;
}

// True when int8 summaries of head_dim are scored by split_vnni (the AVX-512 level active and VNNI present).
bool use_vnni(int head_dim, int summary_bits) {
#if INF_SELECT_X86
    return summary_bits == 8 && head_dim % 64 == 0 && active_isa() == Isa::avx512 && vnni_supported();
#else
    (void)head_dim;
    (void)summary_bits;
    return false;
#endif
}

PageFn pick_page(int head_dim, int summary_bits) {
#if INF_SELECT_X86
    if (use_vnni(head_dim, summary_bits)) {
        return split_vnni;
    }
#endif
    if (summary_bits == 16) {
        return pick_page_for<Fmt::bf16>(head_dim);
    }
    if (summary_bits == 8) {
        return pick_page_for<Fmt::i8>(head_dim);
    }
    return nullptr;  // float32: per box, pick_score
}

// One layer's stored summaries as the scoring loop reads them (layout: inf_kv_layer.summary_bits).
struct SummaryView {
    explicit SummaryView(const inf_kv_layer& layer)
        : base(reinterpret_cast<const unsigned char*>(layer.summary)),
          bits(layer.summary_bits == 8 || layer.summary_bits == 16 ? layer.summary_bits : 32),
          dim(layer.head_dim),
          subpages(layer.page_size / layer.logical_page_size),
          boxes(static_cast<std::size_t>(layer.kv_heads) * static_cast<std::size_t>(subpages)),
          value_bytes(static_cast<std::size_t>(bits / 8)),
          page_bytes(boxes * 2 * static_cast<std::size_t>(dim) * value_bytes + (bits == 8 ? boxes * sizeof(float) : 0)),
          score(pick_score(dim)),
          page_fn(pick_page(dim, bits)),
          vnni(use_vnni(dim, bits)) {}

    // Floats of one query row as score_subs takes it: q, or for compact forms [q+][q-] (split_query),
    // followed by the byte form when vnni.
    std::size_t q_row_floats() const noexcept {
        if (vnni) {
            return vnni_row_floats(dim);
        }
        return (bits == 32 ? 1 : 2) * static_cast<std::size_t>(dim);
    }

    // Writes query row q (dim floats) in score_subs's form to out (q_row_floats()).
    void split_query(const float* q, float* out) const noexcept {
        if (bits == 32) {
            std::memcpy(out, q, static_cast<std::size_t>(dim) * sizeof(float));
            return;
        }
        for (int d = 0; d < dim; ++d) {
            out[d] = std::max(q[d], 0.0f);
            out[dim + d] = std::min(q[d], 0.0f);
        }
#if INF_SELECT_X86
        if (vnni) {
            vnni_quantise_row(out, dim);
        }
#endif
    }

    // out[g] = the best score of logical pages first .. first + count - 1 of (page, head) for q rows
    // g < groups (at most 64), q rows in split_query's form; -inf when count is 0; NaN never wins.
    void score_subs(std::int32_t page, int head, int first, int count, const float* q, int groups, float* out) const {
        const unsigned char* at = base + static_cast<std::size_t>(page) * page_bytes;
        const std::size_t box = static_cast<std::size_t>(head) * static_cast<std::size_t>(subpages) + static_cast<std::size_t>(first);
        const std::size_t values = 2 * static_cast<std::size_t>(dim);
        const unsigned char* mn = at + box * values * value_bytes;
        if (bits != 32) {
            // Scales are float-aligned: K, V and every page's code block are multiples of 4 bytes.
            const auto* scales = reinterpret_cast<const float*>(at + boxes * values) + box;
            page_fn(q, groups, dim, mn, count, scales, out);
            return;
        }
        float sub_scores[64];
        std::fill_n(out, groups, -std::numeric_limits<float>::infinity());
        for (int sub = 0; sub < count; ++sub, mn += values * sizeof(float)) {
            score(q, groups, dim, mn, mn + static_cast<std::size_t>(dim) * sizeof(float), sub_scores);
            for (int g = 0; g < groups; ++g) {
                out[g] = std::max(out[g], sub_scores[g]);
            }
        }
    }

    const unsigned char* base;
    int bits;
    int dim;
    int subpages;
    std::size_t boxes;
    std::size_t value_bytes;
    std::size_t page_bytes;
    ScoreFn score;
    PageFn page_fn;
    bool vnni;
};

int lists_per_sequence(const inf_page_select_params& p) { return p.per_query_head != 0 ? p.q_heads : p.layer.kv_heads; }

int kept(const inf_page_select_params& p, int s) {
    const int entries = p.page_starts[s + 1] - p.page_starts[s];
    return std::min(entries, std::max(1, p.budget_pages));
}

bool skipped(const inf_page_select_params& p, int kv_head) {
    return p.skip_kv_heads != nullptr && p.skip_kv_heads[kv_head] != 0;
}

// Entries one work item scores: long page tables are split so that one (sequence, head) spreads over
// every thread (batch 1 with one retrieval head per layer is the common long-context case).
constexpr int kEntryBlock = 256;

int max_entries(const inf_page_select_params& p) {
    int widest = 0;
    for (int s = 0; s < p.sequences; ++s) {
        widest = std::max(widest, p.page_starts[s + 1] - p.page_starts[s]);
    }
    return widest;
}

// Floats of one thread's scratch: a sequence's query rows (every q head) in the selector's form
// (SummaryView::q_row_floats) and one index row (as floats' room).
std::uint64_t thread_floats(const inf_page_select_params& p, int widest) {
    const SummaryView view(p.layer);
    return static_cast<std::uint64_t>(p.q_heads) * static_cast<std::uint64_t>(view.q_row_floats()) +
           static_cast<std::uint64_t>(widest) + 16;
}

// Floats of the shared score rows: [sequences * kv_heads][G][widest].
std::uint64_t score_floats(const inf_page_select_params& p, int widest) {
    const std::uint64_t G = static_cast<std::uint64_t>(p.q_heads / std::max(1, p.layer.kv_heads));
    return static_cast<std::uint64_t>(p.sequences) * static_cast<std::uint64_t>(p.layer.kv_heads) * G *
           static_cast<std::uint64_t>(widest);
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

void score_logical_page(const inf_kv_layer& layer, std::int32_t page, std::int32_t head, std::int32_t sub,
                        const float* q, int groups, float* out) {
    const SummaryView summaries(layer);
    const std::size_t row = summaries.q_row_floats();
    std::vector<float> rows(static_cast<std::size_t>(groups) * row);
    for (int g = 0; g < groups; ++g) {
        summaries.split_query(q + static_cast<std::size_t>(g) * static_cast<std::size_t>(layer.head_dim),
                              rows.data() + static_cast<std::size_t>(g) * row);
    }
    for (int g0 = 0; g0 < groups; g0 += 64) {
        summaries.score_subs(page, head, sub, 1, rows.data() + static_cast<std::size_t>(g0) * row, std::min(64, groups - g0),
                             out + g0);
    }
}

bool page_select_quantises_query(int head_dim, int summary_bits) { return use_vnni(head_dim, summary_bits); }

std::uint64_t page_select_workspace_bytes(const inf_page_select_params& params) {
    if (params.sequences <= 0) {
        return 0;
    }
    const int widest = max_entries(params);
    const std::uint64_t threads = static_cast<std::uint64_t>(ThreadPool::instance().threads());
    return (score_floats(params, widest) + threads * thread_floats(params, widest)) * sizeof(float);
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
    const int G = params.q_heads / layer.kv_heads;
    std::int32_t* starts = params.head_page_starts;
    starts[0] = 0;
    for (int s = 0; s < params.sequences; ++s) {
        const int count = kept(params, s);
        for (int l = 0; l < lists; ++l) {
            const std::int64_t index = static_cast<std::int64_t>(s) * lists + l;
            const int kv_head = params.per_query_head != 0 ? l / G : l;
            starts[index + 1] = starts[index] + (skipped(params, kv_head) ? 0 : count);
        }
    }
    ThreadPool& pool = ThreadPool::instance();
    const int widest = max_entries(params);
    const std::uint64_t per_thread = thread_floats(params, widest);
    const std::uint64_t shared = score_floats(params, widest);
    const std::uint64_t needed = (shared + static_cast<std::uint64_t>(pool.threads()) * per_thread) * sizeof(float);
    if (params.workspace == nullptr || params.workspace_bytes < needed) {
        fail(INF_STATUS_INVALID_ARGUMENT, "cpu page_select: workspace of ", params.workspace_bytes, " bytes, needs ", needed);
    }
    const int D = layer.head_dim;
    const std::size_t Dz = static_cast<std::size_t>(D);
    const std::size_t Wz = static_cast<std::size_t>(widest);
    const int lps = layer.logical_page_size;
    const SummaryView summaries(layer);
    const std::size_t q_floats = summaries.q_row_floats();
    float* all_scores = static_cast<float*>(params.workspace);  // [unit][G][widest], unit = s * kv_heads + h
    float* thread_base = all_scores + shared;

    // Work items: blocks of kEntryBlock entries of a sequence, every scored head of each entry in turn, so
    // that the summaries are read in memory order (a page's heads are adjacent). sequence * blocks_max + block.
    // Capacity kept across calls; `items` names the calling thread's vector (a thread_local is not
    // captured by the lambdas, which run on pool threads).
    static thread_local std::vector<std::int64_t> items_of_thread;
    std::vector<std::int64_t>& items = items_of_thread;
    items.clear();
    const int blocks_max = (widest + kEntryBlock - 1) / kEntryBlock;
    for (int s = 0; s < params.sequences; ++s) {
        const int entries = params.page_starts[s + 1] - params.page_starts[s];
        for (int b = 0; b * kEntryBlock < entries; ++b) {
            items.push_back(static_cast<std::int64_t>(s) * blocks_max + b);
        }
    }

    const auto score_items = [&](std::int64_t begin, std::int64_t end, int thread) {
        float* qf = thread_base + static_cast<std::uint64_t>(thread) * per_thread;  // [q_heads][q_row] (selector form)
        float q_row_f32[256];                                                     // head_dim <= 256
        float sub_scores[64];
        int prepared = -1;  // the sequence whose queries qf holds
        for (std::int64_t item = begin; item < end; ++item) {
            const int s = static_cast<int>(items[static_cast<std::size_t>(item)] / blocks_max);
            const int block = static_cast<int>(items[static_cast<std::size_t>(item)] % blocks_max);
            const int first = params.page_starts[s];
            const int entries = params.page_starts[s + 1] - first;
            const std::int64_t kv_length = params.kv_lengths[s];
            if (prepared != s) {
                const std::size_t row = static_cast<std::size_t>(params.q_rows[s]);
                for (int head = 0; head < params.q_heads; ++head) {
                    if (skipped(params, head / G)) {
                        continue;
                    }
                    const std::size_t at = (row * static_cast<std::size_t>(params.q_heads) + static_cast<std::size_t>(head)) * Dz;
                    const float* q_row = static_cast<const float*>(params.q) + at;
                    if (params.q_dtype != INF_DTYPE_F32) {
                        const auto* src = static_cast<const std::uint16_t*>(params.q) + at;
                        for (std::size_t d = 0; d < Dz; ++d) {
                            q_row_f32[d] = params.q_dtype == INF_DTYPE_BF16 ? bf16_to_f32(src[d]) : f16_to_f32(src[d]);
                        }
                        q_row = q_row_f32;
                    }
                    summaries.split_query(q_row, qf + static_cast<std::size_t>(head) * q_floats);
                }
                prepared = s;
            }
            const int e_end = std::min(entries, (block + 1) * kEntryBlock);
            for (int e = block * kEntryBlock; e < e_end; ++e) {
                const std::int64_t pos0 = params.page_positions[first + e];
                const std::int64_t valid = std::min<std::int64_t>(layer.page_size, kv_length - pos0);
                const int used = valid <= 0 ? 0 : static_cast<int>((valid + lps - 1) / lps);  // logical pages holding keys < kv_length
                const std::int32_t page = params.page_ids[first + e];
                for (int h = 0; h < layer.kv_heads; ++h) {
                    if (skipped(params, h)) {
                        continue;
                    }
                    const std::int64_t unit = static_cast<std::int64_t>(s) * layer.kv_heads + h;
                    float* scores = all_scores + static_cast<std::size_t>(unit) * static_cast<std::size_t>(G) * Wz;
                    for (int g = 0; g < G; ++g) {
                        scores[static_cast<std::size_t>(g) * Wz + static_cast<std::size_t>(e)] = kNegInf;
                    }
                    if (used == 0) {
                        continue;
                    }
                    const float* q_head = qf + static_cast<std::size_t>(h) * static_cast<std::size_t>(G) * q_floats;
                    for (int g0 = 0; g0 < G; g0 += 64) {
                        const int gn = std::min(64, G - g0);
                        summaries.score_subs(page, h, 0, used, q_head + static_cast<std::size_t>(g0) * q_floats, gn, sub_scores);
                        for (int g = 0; g < gn; ++g) {
                            float& best = scores[static_cast<std::size_t>(g0 + g) * Wz + static_cast<std::size_t>(e)];
                            best = std::max(best, sub_scores[g]);
                        }
                    }
                }
            }
        }
    };

    const std::int64_t units = static_cast<std::int64_t>(params.sequences) * layer.kv_heads;
    const auto choose = [&](std::int64_t begin, std::int64_t end, int thread) {
        auto* order = reinterpret_cast<std::int32_t*>(thread_base + static_cast<std::uint64_t>(thread) * per_thread +
                                                      static_cast<std::size_t>(params.q_heads) * q_floats);
        for (std::int64_t unit = begin; unit < end; ++unit) {
            const int s = static_cast<int>(unit / layer.kv_heads);
            const int h = static_cast<int>(unit % layer.kv_heads);
            const int first = params.page_starts[s];
            const int entries = params.page_starts[s + 1] - first;
            if (entries == 0 || skipped(params, h)) {
                continue;
            }
            const std::int64_t kv_length = params.kv_lengths[s];
            int forced = -1;  // the entry holding the newest key
            for (int e = 0; e < entries && forced < 0; ++e) {
                const std::int64_t pos0 = params.page_positions[first + e];
                if (kv_length - pos0 > 0 && kv_length - 1 < pos0 + layer.page_size) {
                    forced = e;
                }
            }
            float* scores = all_scores + static_cast<std::size_t>(unit) * static_cast<std::size_t>(G) * Wz;
            const int count = kept(params, s);
            if (params.per_query_head != 0) {
                for (int g = 0; g < G; ++g) {
                    const std::int64_t list = static_cast<std::int64_t>(s) * params.q_heads + h * G + g;
                    top_entries(scores + static_cast<std::size_t>(g) * Wz, entries, count, forced, order,
                                params.head_page_indices + starts[list]);
                }
            } else {
                for (int g = 1; g < G; ++g) {
                    const float* other = scores + static_cast<std::size_t>(g) * Wz;
                    for (int e = 0; e < entries; ++e) {
                        scores[e] = std::max(scores[e], other[e]);
                    }
                }
                const std::int64_t list = static_cast<std::int64_t>(s) * layer.kv_heads + h;
                top_entries(scores, entries, count, forced, order, params.head_page_indices + starts[list]);
            }
        }
    };
    const auto items_count = static_cast<std::int64_t>(items.size());
    if (items_count <= 1) {
        score_items(0, items_count, 0);
    } else {
        pool.parallel_for(items_count, score_items, 1);
    }
    if (units == 1) {
        choose(0, 1, 0);
    } else {
        pool.parallel_for(units, choose, 1);
    }
}

}  // namespace inf::cpu
