#include "attention/cpu_page_select.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
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
#pragma GCC diagnostic ignored "-Wuninitialized"  // GCC 12's AVX-512 intrinsics start from _mm512_undefined_*
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
// The selector reads every summary byte once per (sequence, KV head); it must stream them about as fast
// as the sparse attention streams its K and V, or R = 4 cannot hide it. The query row is quantised to
// bytes and each box costs byte dot products (vpdpbusd: 64 products per instruction), one per 64 dims:
//   sum_d max(q_d mx_d, q_d mn_d) = sum_d |q_d| t_d,  t_d = mx_d where q_d > 0, else -mn_d,
// t picked by a per-row byte mask (no product is wasted on the side the sign rules out). Row g holds,
// after its float split form [q+][q-] (2D floats, the fallback): bytes 2 round(|q| / s) (D bytes; the
// rounded values are at most 127, so doubled they fit a byte), the sign mask (D bits) and s (one float).
// Rounding |q_d| moves its term by at most s/2 |t_d|, so adding sum_d max(|mn_d|, |mx_d|) (>= sum |t_d|)
// to the doubled sum keeps scale * s / 2 * (that sum) an upper bound of the decoded box's bound, and so
// of every key in the box. Boxes and rows go 4 x 4: their 16 sums are reduced in one transposition.

bool vnni_supported() noexcept {
    static const bool yes = [] {
        unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
        return __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) != 0 && (ecx & (1U << 11)) != 0;
    }();
    return yes;
}

// Floats of one query row in the VNNI form (D % 64 == 0): [q+][q-] floats, D bytes, D mask bits, step.
constexpr std::size_t vnni_row_floats(int D) noexcept {
    return 2 * static_cast<std::size_t>(D) + static_cast<std::size_t>(D) / 4 + static_cast<std::size_t>(D) / 32 + 1;
}

struct VnniRow {
    const std::uint8_t* bytes;  // D bytes: 2 round(|q| / step)
    const std::uint8_t* mask;   // D bits: bit d set where q_d > 0 (pick the max code)
    float step;
};

inline VnniRow vnni_row(const float* row, int D) noexcept {
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(row + 2 * static_cast<std::size_t>(D));
    return {bytes, bytes + D, row[vnni_row_floats(D) - 1]};
}

// Writes the byte form, mask and step after the float split form already in row (see above). A row
// whose step is not a positive finite number (a zero or non-finite query) gets step NaN: scored in floats.
// (Only called where VNNI runs, so AVX-512 is there; D % 64 == 0.)
__attribute__((target("avx512f,avx512bw"))) void vnni_quantise_row(float* row, int D) noexcept {
    const float* pos = row;
    const float* neg = row + D;
    __m512 widest = _mm512_setzero_ps();
    for (int d = 0; d < D; d += 16) {
        widest = _mm512_max_ps(widest, _mm512_max_ps(_mm512_loadu_ps(pos + d), _mm512_sub_ps(_mm512_setzero_ps(), _mm512_loadu_ps(neg + d))));
    }
    alignas(64) float lanes[16];
    _mm512_store_ps(lanes, widest);  // (GCC 12's _mm512_reduce_max_ps trips -Wuninitialized)
    const float m = *std::max_element(lanes, lanes + 16);
    const float step = m / 127.0f;
    auto* bytes = reinterpret_cast<std::uint8_t*>(row + 2 * static_cast<std::size_t>(D));
    std::uint8_t* mask = bytes + D;
    float* step_out = row + vnni_row_floats(D) - 1;
    if (!(step > 0.0f) || !std::isfinite(step)) {
        *step_out = std::numeric_limits<float>::quiet_NaN();
        return;
    }
    // Nearest: magnitude / step is >= 0 and <= ~127 (the min guards the last ulp).
    const __m512 inverse = _mm512_set1_ps(1.0f / step);
    for (int d = 0; d < D; d += 16) {
        const __m512 p = _mm512_loadu_ps(pos + d);
        const __mmask16 positive = _mm512_cmp_ps_mask(p, _mm512_setzero_ps(), _CMP_GT_OQ);
        const __m512 magnitude = _mm512_mask_mov_ps(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_loadu_ps(neg + d)), positive, p);
        __m512i code = _mm512_maskz_cvttps_epi32(0xFFFF, _mm512_fmadd_ps(magnitude, inverse, _mm512_set1_ps(0.5f)));
        code = _mm512_min_epi32(code, _mm512_set1_epi32(127));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(bytes + d), _mm512_cvtepi32_epi8(_mm512_add_epi32(code, code)));
        const auto bits = static_cast<std::uint16_t>(positive);
        std::memcpy(mask + d / 8, &bits, sizeof bits);
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

// The slow, exact path for a (page, head) holding an empty or infinite box, or rows with a NaN step.
void split_vnni_in_floats(const float* q, int groups, int D, const void* box0, int used, const float* scales, float* out) {
    const std::size_t row = vnni_row_floats(D);
    for (int sub = 0; sub < used; ++sub) {
        const auto* codes = static_cast<const std::int8_t*>(box0) + static_cast<std::size_t>(sub) * 2 * static_cast<std::size_t>(D);
        for (int g = 0; g < groups; ++g) {
            keep_max(out[g], i8_box_in_floats(q + static_cast<std::size_t>(g) * row, D, codes, scales[sub]));
        }
    }
}

// One box's codes as the dot products take them: negated min codes, max codes, and the slack partials
// sum_d max(|mn_d|, |mx_d|) every row's sum starts from. Codes are rounded outward, mn_d <= mx_d, so
// max(|mn_d|, |mx_d|) = max(mx_d, -mn_d) >= 0 (a byte the unsigned side of vpdpbusd reads as is).
template <int C>
struct VnniBox {
    __m512i neg_min[C];
    __m512i max_codes[C];
    __m512i magnitude;
};

template <int C>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) inline VnniBox<C> vnni_box(const std::int8_t* codes, int D) noexcept {
    VnniBox<C> box;
    box.magnitude = _mm512_setzero_si512();
    for (int c = 0; c < C; ++c) {
        const __m512i mn = _mm512_loadu_si512(codes + c * 64);
        box.max_codes[c] = _mm512_loadu_si512(codes + D + c * 64);
        box.neg_min[c] = _mm512_sub_epi8(_mm512_setzero_si512(), mn);  // codes are within -127 .. 127
        box.magnitude = _mm512_dpbusd_epi32(box.magnitude, _mm512_max_epi8(box.max_codes[c], box.neg_min[c]), _mm512_set1_epi8(1));
    }
    return box;
}

// The doubled byte sum of one (box, row): lanes whose sum is the box's bound for the row, in steps.
template <int C>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) inline __m512i vnni_box_row(const VnniBox<C>& box, const __m512i* bytes,
                                                                                    const __mmask64* mask) noexcept {
    __m512i sum = box.magnitude;
    for (int c = 0; c < C; ++c) {
        sum = _mm512_dpbusd_epi32(sum, bytes[c], _mm512_mask_blend_epi8(mask[c], box.neg_min[c], box.max_codes[c]));
    }
    return sum;
}

// The common shape, 4 boxes x 4 rows (a 64-token page of 16-token logical pages, GQA groups of 4 or 8),
// unrolled so that the 16 sums stay in registers: out[a] = max(out[a], max over boxes of the scaled sum).
template <int C>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void vnni_4x4(const VnniRow* rows, int D, const std::int8_t* box0,
                                                                       __m512 factor, float* out) {
    __m512i bytes[4][C];
    __mmask64 mask[4][C];
#pragma GCC unroll 4
    for (int a = 0; a < 4; ++a) {
        for (int c = 0; c < C; ++c) {
            bytes[a][c] = _mm512_loadu_si512(rows[a].bytes + c * 64);
            std::uint64_t bits = 0;
            std::memcpy(&bits, rows[a].mask + c * 8, sizeof bits);
            mask[a][c] = _cvtu64_mask64(bits);
        }
    }
    __m512i acc[16];
#pragma GCC unroll 4
    for (int sub = 0; sub < 4; ++sub) {
        const VnniBox<C> box = vnni_box<C>(box0 + static_cast<std::size_t>(sub) * 2 * static_cast<std::size_t>(D), D);
#pragma GCC unroll 4
        for (int a = 0; a < 4; ++a) {
            acc[4 * sub + a] = vnni_box_row<C>(box, bytes[a], mask[a]);
        }
    }
    __m512 score = _mm512_mul_ps(_mm512_cvtepi32_ps(sums16(acc)), factor);
    score = _mm512_max_ps(score, _mm512_shuffle_f32x4(score, score, _MM_SHUFFLE(2, 3, 0, 1)));
    score = _mm512_max_ps(score, _mm512_shuffle_f32x4(score, score, _MM_SHUFFLE(1, 0, 3, 2)));
    alignas(16) float best[4];
    _mm_store_ps(best, _mm512_castps512_ps128(score));
    for (int a = 0; a < 4; ++a) {
        keep_max(out[a], best[a]);
    }
}

// Every head of one page at once, for the common shape (4 logical pages per page, groups a multiple of
// 4): head h's G scores go to out + h * head_stride. Per-page work (checks, the lane scales) is paid once
// instead of per head. Returns false, with out undefined, when a box is empty or infinite or a row has no
// step (a zero query): the caller then scores the page head by head.
template <int C>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) bool vnni_page(const float* rows, int G, int D, int kv_heads,
                                                                        const std::int8_t* codes, const float* scales,
                                                                        const std::int32_t* skip, float* out,
                                                                        std::size_t head_stride, const char* next,
                                                                        std::size_t next_bytes) {
    const int boxes = kv_heads * 4;
    for (int b = 0; b < boxes; b += 16) {
        const auto lanes = static_cast<__mmask16>(boxes - b >= 16 ? 0xFFFF : (1U << (boxes - b)) - 1);
        const __m512 x = _mm512_maskz_loadu_ps(lanes, scales + b);
        if (_mm512_mask_cmp_ps_mask(lanes, x, _mm512_set1_ps(std::numeric_limits<float>::infinity()), _CMP_LT_OQ) != lanes) {
            return false;
        }
    }
    const std::size_t row = vnni_row_floats(D);
    const std::size_t head_bytes = 4 * 2 * static_cast<std::size_t>(D);
    const __m512i box_of_lane = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
    // The next page's bytes are asked for a head's share at a time, spread over this page's work (all at
    // once, the requests queue behind each other and stall), so its lines arrive before it is scored.
    const std::size_t share = (next_bytes / static_cast<std::size_t>(kv_heads) + 63) / 64 * 64;
    for (int h = 0; h < kv_heads; ++h) {
        if (next != nullptr) {
            const std::size_t end = std::min(next_bytes, (static_cast<std::size_t>(h) + 1) * share);
            for (std::size_t off = static_cast<std::size_t>(h) * share; off < end; off += 64) {
                _mm_prefetch(next + off, _MM_HINT_T0);
            }
        }
        if (skip != nullptr && skip[h] != 0) {
            continue;
        }
        const __m512 box_scale = _mm512_permutexvar_ps(box_of_lane, _mm512_maskz_loadu_ps(0xF, scales + 4 * h));
        for (int g0 = 0; g0 < G; g0 += 4) {
            VnniRow r[4];
            for (int a = 0; a < 4; ++a) {
                r[a] = vnni_row(rows + (static_cast<std::size_t>(h) * static_cast<std::size_t>(G) + static_cast<std::size_t>(g0 + a)) * row, D);
            }
            // In registers: four scalar stores read back as one vector would stall store forwarding.
            const __m128 steps = _mm_set_ps(r[3].step, r[2].step, r[1].step, r[0].step);
            if (_mm_movemask_ps(_mm_cmpunord_ps(steps, steps)) != 0) {
                return false;
            }
            float* o = out + static_cast<std::size_t>(h) * head_stride + static_cast<std::size_t>(g0);
            std::fill_n(o, 4, -std::numeric_limits<float>::infinity());
            vnni_4x4<C>(r, D, codes + static_cast<std::size_t>(h) * head_bytes,
                        _mm512_mul_ps(box_scale, _mm512_broadcast_f32x4(_mm_mul_ps(steps, _mm_set1_ps(0.5f)))), o);
        }
    }
    return true;
}

// C = D / 64 chunks (1..4). Boxes s0.. (up to 4) against rows g0.. (up to 4): the 16 (box, row) sums land
// in lane 4 * box + row; each row keeps the max over its boxes.
template <int C>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void split_vnni(const float* q, int groups, int D,
                                                                         const void* box0, int used,
                                                                         const float* scales, float* out) {
    const std::size_t row = vnni_row_floats(D);
    const std::size_t values = 2 * static_cast<std::size_t>(D);
    for (int g = 0; g < groups; ++g) {
        out[g] = -std::numeric_limits<float>::infinity();
    }
    bool exact = true;
    for (int sub = 0; sub < used; ++sub) {
        exact = exact && scales[sub] < std::numeric_limits<float>::infinity();
    }
    for (int g = 0; g < groups; ++g) {
        const float step = vnni_row(q + static_cast<std::size_t>(g) * row, D).step;
        exact = exact && step == step;
    }
    if (!exact) {
        split_vnni_in_floats(q, groups, D, box0, used, scales, out);
        return;
    }
    const __m512i zero = _mm512_setzero_si512();
    const __m512i box_of_lane = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
    for (int s0 = 0; s0 < used; s0 += 4) {
        const int sn = std::min(4, used - s0);
        // Lane 4 * box + row scales by 0.5 * scale[box] (the 0.5 undoes the doubled bytes) * step[row].
        const __m512 box_scale = _mm512_permutexvar_ps(
            box_of_lane, _mm512_maskz_loadu_ps(static_cast<__mmask16>((1U << sn) - 1), scales + s0));
        for (int g0 = 0; g0 < groups; g0 += 4) {
            const int gn = std::min(4, groups - g0);
            VnniRow rows[4];
            alignas(16) float steps[4] = {0.0f, 0.0f, 0.0f, 0.0f};
            for (int a = 0; a < gn; ++a) {
                rows[a] = vnni_row(q + static_cast<std::size_t>(g0 + a) * row, D);
                steps[a] = 0.5f * rows[a].step;
            }
            if (sn == 4 && gn == 4) {
                vnni_4x4<C>(rows, D, static_cast<const std::int8_t*>(box0) + static_cast<std::size_t>(s0) * values,
                            _mm512_mul_ps(box_scale, _mm512_broadcast_f32x4(_mm_load_ps(steps))), out + g0);
                continue;
            }
            __m512i acc[16];
            for (int sub = 0; sub < 4; ++sub) {
                if (sub >= sn) {
                    for (int a = 0; a < 4; ++a) acc[4 * sub + a] = zero;
                    continue;
                }
                const VnniBox<C> box = vnni_box<C>(static_cast<const std::int8_t*>(box0) + static_cast<std::size_t>(s0 + sub) * values, D);
                for (int a = 0; a < 4; ++a) {
                    if (a >= gn) {
                        acc[4 * sub + a] = zero;
                        continue;
                    }
                    __m512i bytes[C];
                    __mmask64 mask[C];
                    for (int c = 0; c < C; ++c) {
                        bytes[c] = _mm512_loadu_si512(rows[a].bytes + c * 64);
                        std::uint64_t bits = 0;
                        std::memcpy(&bits, rows[a].mask + c * 8, sizeof bits);
                        mask[c] = _cvtu64_mask64(bits);
                    }
                    acc[4 * sub + a] = vnni_box_row<C>(box, bytes, mask);
                }
            }
            const __m512 factor = _mm512_mul_ps(box_scale, _mm512_broadcast_f32x4(_mm_load_ps(steps)));
            __m512 score = _mm512_mul_ps(_mm512_cvtepi32_ps(sums16(acc)), factor);
            // Lanes of missing boxes or rows never win; then the max over the 4 boxes of each row.
            const unsigned row_bits = (1U << gn) - 1;
            unsigned live = 0;
            for (int sub = 0; sub < sn; ++sub) live |= row_bits << (4 * sub);
            score = _mm512_mask_mov_ps(_mm512_set1_ps(-std::numeric_limits<float>::infinity()), static_cast<__mmask16>(live), score);
            score = _mm512_max_ps(score, _mm512_shuffle_f32x4(score, score, _MM_SHUFFLE(2, 3, 0, 1)));
            score = _mm512_max_ps(score, _mm512_shuffle_f32x4(score, score, _MM_SHUFFLE(1, 0, 3, 2)));
            alignas(16) float best[4];
            _mm_store_ps(best, _mm512_castps512_ps128(score));
            for (int a = 0; a < gn; ++a) {
                keep_max(out[g0 + a], best[a]);
            }
        }
    }
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
        switch (head_dim / 64) {
        case 1: return split_vnni<1>;
        case 2: return split_vnni<2>;
        case 3: return split_vnni<3>;
        default: return split_vnni<4>;
        }
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

// Whole pages, every head at once: (rows of the sequence's q heads, G, D, kv_heads, the page's codes, its
// scales, skipped heads or null, out, out's stride between heads); false: score head by head instead.
using WholePageFn = bool (*)(const float*, int, int, int, const std::int8_t*, const float*, const std::int32_t*, float*, std::size_t,
                             const char*, std::size_t);

// The whole-page form for int8 summaries with VNNI, 4 logical pages per page and groups of 4k; else null.
WholePageFn pick_whole_page(int head_dim, int summary_bits, int subpages, int group) {
#if INF_SELECT_X86
    if (use_vnni(head_dim, summary_bits) && subpages == 4 && group % 4 == 0) {
        switch (head_dim / 64) {
        case 1: return vnni_page<1>;
        case 2: return vnni_page<2>;
        case 3: return vnni_page<3>;
        default: return vnni_page<4>;
        }
    }
#endif
    (void)head_dim;
    (void)summary_bits;
    (void)subpages;
    (void)group;
    return nullptr;
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
          vnni(use_vnni(dim, bits)),
          kv_heads(layer.kv_heads) {}

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

    // Every head of a page whose logical pages all hold keys, through whole (pick_whole_page); false when
    // the page must be scored head by head. Head h's scores at out + h * head_stride.
    // next: the page scored after this one (prefetched meanwhile), or -1.
    bool score_page(WholePageFn whole, std::int32_t page, std::int32_t next, const float* rows, int G, const std::int32_t* skip,
                    float* out, std::size_t head_stride) const {
        const unsigned char* at = base + static_cast<std::size_t>(page) * page_bytes;
        const auto* scales = reinterpret_cast<const float*>(at + boxes * 2 * static_cast<std::size_t>(dim));
        const char* ahead = next < 0 ? nullptr : reinterpret_cast<const char*>(base + static_cast<std::size_t>(next) * page_bytes);
        return whole(rows, G, dim, kv_heads, reinterpret_cast<const std::int8_t*>(at), scales, skip, out, head_stride, ahead,
                     page_bytes);
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
    int kv_heads;
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

// Floats of one thread's scratch: one list's scores in a row and its ranking keys (at most widest; uint64,
// two floats' room each).
std::uint64_t thread_floats(int widest) { return 3 * static_cast<std::uint64_t>(widest) + 16; }

// Floats of the shared score rows: [sequences * kv_heads][widest][G] (a page's G rows adjacent, so the
// kernels write them in place and the per-KV-head max reads them in order).
std::uint64_t score_floats(const inf_page_select_params& p, int widest) {
    const std::uint64_t G = static_cast<std::uint64_t>(p.q_heads / std::max(1, p.layer.kv_heads));
    return static_cast<std::uint64_t>(p.sequences) * static_cast<std::uint64_t>(p.layer.kv_heads) * G *
           static_cast<std::uint64_t>(widest);
}

// Floats of the query rows in the selector's form, prepared once per call: [sequences][q_heads][row].
std::uint64_t query_floats(const inf_page_select_params& p) {
    const SummaryView view(p.layer);
    return static_cast<std::uint64_t>(p.sequences) * static_cast<std::uint64_t>(p.q_heads) *
           static_cast<std::uint64_t>(view.q_row_floats());
}

// A ranking key: higher is better; NaN ranks as -inf, -0 as +0, ties go to the lower entry.
inline std::uint64_t rank_key(float x, int e) noexcept {
    if (!(x == x)) {
        x = kNegInf;
    } else if (x == 0.0f) {
        x = 0.0f;
    }
    std::uint32_t bits = 0;
    std::memcpy(&bits, &x, sizeof bits);
    bits = (bits & 0x80000000U) != 0 ? ~bits : (bits | 0x80000000U);
    return (static_cast<std::uint64_t>(bits) << 32) | static_cast<std::uint64_t>(~static_cast<std::uint32_t>(e));
}

// The best of a group's G scores (scores are never NaN: every kernel keeps the max with NaN losing).
inline float group_best(const float* at, int G) noexcept {
    int g = 0;
    float best = at[0];
#if INF_SELECT_X86
    if (G % 4 == 0) {  // SSE, part of every x86-64
        __m128 m = _mm_loadu_ps(at);
        for (g = 4; g < G; g += 4) {
            m = _mm_max_ps(m, _mm_loadu_ps(at + g));
        }
        m = _mm_max_ps(m, _mm_shuffle_ps(m, m, _MM_SHUFFLE(2, 3, 0, 1)));
        m = _mm_max_ps(m, _mm_shuffle_ps(m, m, _MM_SHUFFLE(1, 0, 3, 2)));
        return _mm_cvtss_f32(m);
    }
#endif
    for (g = 1; g < G; ++g) {
        best = at[g] > best ? at[g] : best;
    }
    return best;
}

// The score a ranking key was made from (NaN having become -inf).
inline float key_score(std::uint64_t key) noexcept {
    auto bits = static_cast<std::uint32_t>(key >> 32);
    bits = (bits & 0x80000000U) != 0 ? (bits & 0x7FFFFFFFU) : ~bits;
    float x = 0.0f;
    std::memcpy(&x, &bits, sizeof x);
    return x;
}

// Keeps the count best of scores[0, entries) (forced first when >= 0) and writes them ascending to out.
// keys: room for count keys, a min-heap of the best so far. Entries are visited in order, so a later one
// enters only with a score above the heap's worst (a tie goes to the lower entry, already in): one
// comparison for most entries, instead of the several passes of a sort or nth_element.
void top_entries(const float* scores, int entries, int count, int forced, std::uint64_t* keys, std::int32_t* out) {
    if (count >= entries) {
        for (int e = 0; e < entries; ++e) {
            out[e] = e;
        }
        return;
    }
    int written = 0;
    if (forced >= 0) {
        out[written++] = forced;
    }
    const int want = count - written;
    if (want > 0) {
        const std::greater<> worse_first;
        int n = 0;
        int e = 0;
        for (; e < entries && n < want; ++e) {
            if (e != forced) {
                keys[n++] = rank_key(scores[e], e);
            }
        }
        std::make_heap(keys, keys + n, worse_first);
        float worst = key_score(keys[0]);
        for (; e < entries; ++e) {
            if (scores[e] > worst && e != forced) {  // NaN never enters
                std::pop_heap(keys, keys + want, worse_first);
                keys[want - 1] = rank_key(scores[e], e);
                std::push_heap(keys, keys + want, worse_first);
                worst = key_score(keys[0]);
            }
        }
        for (int i = 0; i < n; ++i) {
            out[written++] = static_cast<std::int32_t>(~static_cast<std::uint32_t>(keys[i]));
        }
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
    return (score_floats(params, widest) + query_floats(params) + threads * thread_floats(widest)) * sizeof(float);
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
    const std::uint64_t per_thread = thread_floats(widest);
    const std::uint64_t shared = score_floats(params, widest);
    const std::uint64_t query = query_floats(params);
    const std::uint64_t needed = (shared + query + static_cast<std::uint64_t>(pool.threads()) * per_thread) * sizeof(float);
    if (params.workspace == nullptr || params.workspace_bytes < needed) {
        fail(INF_STATUS_INVALID_ARGUMENT, "cpu page_select: workspace of ", params.workspace_bytes, " bytes, needs ", needed);
    }
    const int D = layer.head_dim;
    const std::size_t Dz = static_cast<std::size_t>(D);
    const std::size_t Wz = static_cast<std::size_t>(widest);
    const std::size_t Gz = static_cast<std::size_t>(G);
    const int lps = layer.logical_page_size;
    const SummaryView summaries(layer);
    const std::size_t q_floats = summaries.q_row_floats();
    const WholePageFn whole = pick_whole_page(D, summaries.bits, summaries.subpages, G);
    float* all_scores = static_cast<float*>(params.workspace);  // [unit][widest][G], unit = s * kv_heads + h
    float* all_rows = all_scores + shared;                      // [sequence][q_head][q_floats]
    float* thread_base = all_rows + query;

    // The query rows once per call (the quantised form costs a pass over each row).
    const auto prepare = [&](std::int64_t begin, std::int64_t end, int) {
        float q_row_f32[256];  // head_dim <= 256
        for (std::int64_t s = begin; s < end; ++s) {
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
                summaries.split_query(q_row, all_rows + (static_cast<std::size_t>(s) * static_cast<std::size_t>(params.q_heads) +
                                                         static_cast<std::size_t>(head)) * q_floats);
            }
        }
    };
    if (params.sequences == 1) {
        prepare(0, 1, 0);
    } else {
        pool.parallel_for(params.sequences, prepare, 1);
    }

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

    const auto score_items = [&](std::int64_t begin, std::int64_t end, int) {
        for (std::int64_t item = begin; item < end; ++item) {
            const int s = static_cast<int>(items[static_cast<std::size_t>(item)] / blocks_max);
            const int block = static_cast<int>(items[static_cast<std::size_t>(item)] % blocks_max);
            const int first = params.page_starts[s];
            const int entries = params.page_starts[s + 1] - first;
            const std::int64_t kv_length = params.kv_lengths[s];
            const float* rows = all_rows + static_cast<std::size_t>(s) * static_cast<std::size_t>(params.q_heads) * q_floats;
            const int e_end = std::min(entries, (block + 1) * kEntryBlock);
            for (int e = block * kEntryBlock; e < e_end; ++e) {
                const std::int64_t pos0 = params.page_positions[first + e];
                const std::int64_t valid = std::min<std::int64_t>(layer.page_size, kv_length - pos0);
                const int used = valid <= 0 ? 0 : static_cast<int>((valid + lps - 1) / lps);  // logical pages holding keys < kv_length
                const std::int32_t page = params.page_ids[first + e];
                if (whole != nullptr && used == summaries.subpages &&
                    summaries.score_page(whole, page, e + 1 < e_end ? params.page_ids[first + e + 1] : -1, rows, G,
                                         params.skip_kv_heads,
                                         all_scores + ((static_cast<std::size_t>(s) * static_cast<std::size_t>(layer.kv_heads)) * Wz +
                                                       static_cast<std::size_t>(e)) * Gz,
                                         Wz * Gz)) {
                    continue;
                }
                for (int h = 0; h < layer.kv_heads; ++h) {
                    if (skipped(params, h)) {
                        continue;
                    }
                    const std::size_t unit = static_cast<std::size_t>(s) * static_cast<std::size_t>(layer.kv_heads) + static_cast<std::size_t>(h);
                    float* scores = all_scores + (unit * Wz + static_cast<std::size_t>(e)) * Gz;
                    if (used == 0) {
                        std::fill_n(scores, G, kNegInf);
                        continue;
                    }
                    const float* q_head = rows + static_cast<std::size_t>(h) * Gz * q_floats;
                    for (int g0 = 0; g0 < G; g0 += 64) {
                        summaries.score_subs(page, h, 0, used, q_head + static_cast<std::size_t>(g0) * q_floats, std::min(64, G - g0),
                                             scores + g0);
                    }
                }
            }
        }
    };

    const std::int64_t units = static_cast<std::int64_t>(params.sequences) * layer.kv_heads;
    const auto choose = [&](std::int64_t begin, std::int64_t end, int thread) {
        float* row = thread_base + static_cast<std::uint64_t>(thread) * per_thread;  // one list's scores, in entry order
        // 8-byte aligned (thread_floats leaves room for it).
        auto* keys = reinterpret_cast<std::uint64_t*>((reinterpret_cast<std::uintptr_t>(row + Wz) + 7) & ~std::uintptr_t{7});
        for (std::int64_t unit = begin; unit < end; ++unit) {
            const int s = static_cast<int>(unit / layer.kv_heads);
            const int h = static_cast<int>(unit % layer.kv_heads);
            const int first = params.page_starts[s];
            const int entries = params.page_starts[s + 1] - first;
            if (entries == 0 || skipped(params, h)) {
                continue;
            }
            const std::int64_t kv_length = params.kv_lengths[s];
            int forced = -1;  // the entry holding the newest key (page tables grow at the end: searched from there)
            for (int e = entries - 1; e >= 0 && forced < 0; --e) {
                const std::int64_t pos0 = params.page_positions[first + e];
                if (kv_length - pos0 > 0 && kv_length - 1 < pos0 + layer.page_size) {
                    forced = e;
                }
            }
            float* scores = all_scores + static_cast<std::size_t>(unit) * Wz * Gz;
            const int count = kept(params, s);
            if (params.per_query_head != 0) {
                for (int g = 0; g < G; ++g) {
                    const std::int64_t list = static_cast<std::int64_t>(s) * params.q_heads + h * G + g;
                    for (int e = 0; e < entries; ++e) {
                        row[e] = scores[static_cast<std::size_t>(e) * Gz + static_cast<std::size_t>(g)];
                    }
                    top_entries(row, entries, count, forced, keys, params.head_page_indices + starts[list]);
                }
            } else {
                // The group's best (NaN never wins, as keep_max), also into slot 0, where score_entries reads it.
                for (int e = 0; e < entries; ++e) {
                    float* at = scores + static_cast<std::size_t>(e) * Gz;
                    row[e] = at[0] = group_best(at, G);
                }
                const std::int64_t list = static_cast<std::int64_t>(s) * layer.kv_heads + h;
                top_entries(row, entries, count, forced, keys, params.head_page_indices + starts[list]);
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
