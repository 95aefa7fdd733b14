// kv_append: float32 keys/values -> the pool's storage dtype, plus the per-logical-page key summaries.
//
// Design. One CTA per (token, KV head), one thread per element of the head (head_dim <= 256): appends
// are small next to attention (a decode step writes one token per sequence; a prefill chunk's store is
// a memory copy), so the simple mapping is enough and keeps the index math obvious.
//
// Summaries. Tokens of one append may share a logical page (a prefill chunk fills whole pages), so
// CTAs of different tokens update the same summary concurrently. They do so with atomic min/max on the
// float bits (see atomic_min_float): exact, order-free, no scratch memory. A restart (a token written to
// slot % logical_page_size == 0) is a separate kernel that runs first and sets min = +inf, max = -inf
// for that logical page, so the order of tokens inside one append does not matter: after the append
// the summary of a restarted logical page covers exactly the tokens this append wrote to it, and that
// of any other logical page its previous bounds widened by them. (A sequential CPU loop gives the same
// result whenever the restarting token precedes the other tokens of its logical page in the append, the
// only order an append of a growing sequence produces.) The summary holds the keys as stored (rounded
// to the pool's dtype), the values attention actually reads.
//
// Compact summaries (layer.summary_bits 16 or 8; layout in attention_params.h). A compact box cannot be
// widened atomically (an int8 box shares one scale), so the store kernel skips them and a second kernel,
// one CTA per (token, KV head), updates them: the CTA of the first token of the append in a logical page
// (the leader; CTAs of later tokens of that page exit) walks the append's tokens of that page in order,
// widening the decoded stored box by each stored key (restarting at slot 0), and re-encodes it once,
// outward, if it changed. So the result is that of the CPU pool (PagePool::update_compact_summaries),
// and the box contains every key since its restart. The leader test and the walk scan the append's
// page/slot arrays, O(tokens) per CTA: trivial for decode, ~0.1 ms for a 4K-token prefill chunk.
#include <cfloat>

#include "cuda/kv_types.cuh"
#include "cuda/paged_kv.h"

namespace inf::cuda {

namespace {

// Atomic float min/max on the IEEE bits, without a compare-and-swap loop. Non-negative floats (sign
// bit clear) order like their bits as signed ints; negative floats (sign bit set, -0.0 included) order
// inversely to their bits as unsigned ints, and every one of them is above every non-negative float
// as unsigned / below it as signed. So: min of a non-negative value = signed atomicMin; min of a
// negative value = unsigned atomicMax; and symmetrically for max. Checked cases: +inf/-inf initial
// values, mixed signs, -0.0 (goes to the unsigned branch so that it never beats a negative value as
// INT_MIN would). NaN is not expected in keys.
__device__ __forceinline__ void atomic_min_float(float* address, float value) {
    if (!signbit(value)) {
        atomicMin(reinterpret_cast<int*>(address), __float_as_int(value));
    } else {
        atomicMax(reinterpret_cast<unsigned int*>(address), __float_as_uint(value));
    }
}
__device__ __forceinline__ void atomic_max_float(float* address, float value) {
    if (!signbit(value)) {
        atomicMax(reinterpret_cast<int*>(address), __float_as_int(value));
    } else {
        atomicMin(reinterpret_cast<unsigned int*>(address), __float_as_uint(value));
    }
}

// The summary of (page, head, logical page): [2][head_dim] floats (min, then max).
__device__ __forceinline__ float* summary_of(const inf_kv_layer& layer, std::int32_t page, std::int32_t head,
                                             std::int32_t slot) {
    const std::int32_t logical_pages = layer.page_size / layer.logical_page_size;
    const std::int64_t index =
        (static_cast<std::int64_t>(page) * layer.kv_heads + head) * logical_pages + slot / layer.logical_page_size;
    return layer.summary + index * 2 * layer.head_dim;
}

// grid: tokens * kv_heads; block: threads >= head_dim is not required (loop). Resets the summaries of
// the logical pages whose first slot this append writes.
__global__ void summary_restart_kernel(inf_kv_layer layer, const std::int32_t* __restrict__ pages,
                                       const std::int32_t* __restrict__ slots) {
    const std::int32_t token = static_cast<std::int32_t>(blockIdx.x) / layer.kv_heads;
    const std::int32_t head = static_cast<std::int32_t>(blockIdx.x) % layer.kv_heads;
    const std::int32_t slot = slots[token];
    if (slot % layer.logical_page_size != 0) {
        return;
    }
    float* summary = summary_of(layer, pages[token], head, slot);
    for (std::int32_t d = static_cast<std::int32_t>(threadIdx.x); d < layer.head_dim;
         d += static_cast<std::int32_t>(blockDim.x)) {
        summary[d] = INFINITY;
        summary[layer.head_dim + d] = -INFINITY;
    }
}

// The largest bfloat16 <= x (NaN stays NaN); round up is -down(-x). As bf16_round_down in page_pool.cpp.
__device__ __forceinline__ unsigned short bf16_down_bits(float x) {
    if (x != x) {
        return 0x7FC0u;
    }
    const unsigned bits = __float_as_uint(x);
    unsigned short top = static_cast<unsigned short>(bits >> 16);
    if ((bits & 0xFFFFu) != 0u && (bits >> 31) != 0u) {
        ++top;
    }
    return top;
}
__device__ __forceinline__ float bf16_bits_to_float(unsigned short bits) {
    return __uint_as_float(static_cast<unsigned>(bits) << 16);
}

// Max of value over the CTA (blockDim.x a multiple of 32, at most 256). Contains barriers.
__device__ __forceinline__ float block_max(float value, float* warp_max) {
    for (int offset = 16; offset >= 1; offset >>= 1) {
        value = fmaxf(value, __shfl_xor_sync(0xFFFFFFFFu, value, offset));
    }
    const int warp = static_cast<int>(threadIdx.x) >> 5;
    if ((threadIdx.x & 31u) == 0u) {
        warp_max[warp] = value;
    }
    __syncthreads();
    float result = warp_max[0];
    for (int w = 1; w < static_cast<int>(blockDim.x >> 5); ++w) {
        result = fmaxf(result, warp_max[w]);
    }
    __syncthreads();  // warp_max may be reused
    return result;
}

// grid: tokens * kv_heads; block: head_dim rounded up to warps (one thread per dim d).
template <class T>
__global__ void compact_summary_kernel(inf_kv_layer layer, std::int32_t tokens, const std::int32_t* __restrict__ pages,
                                       const std::int32_t* __restrict__ slots) {
    __shared__ int earlier;
    __shared__ float warp_max[8];
    const std::int32_t token = static_cast<std::int32_t>(blockIdx.x) / layer.kv_heads;
    const std::int32_t head = static_cast<std::int32_t>(blockIdx.x) % layer.kv_heads;
    const std::int32_t lps = layer.logical_page_size;
    const std::int32_t page = pages[token];
    const std::int32_t sub = slots[token] / lps;
    const int d = static_cast<int>(threadIdx.x);
    const int dim = layer.head_dim;
    if (d == 0) {
        earlier = 0;
    }
    __syncthreads();
    for (std::int32_t j = d; j < token; j += static_cast<std::int32_t>(blockDim.x)) {
        if (pages[j] == page && slots[j] / lps == sub) {
            earlier = 1;  // every writer writes 1
        }
    }
    __syncthreads();
    if (earlier != 0) {
        return;  // CTA-uniform: an earlier token's CTA leads this logical page
    }
    const std::int32_t subs = layer.page_size / lps;
    const std::int64_t boxes = static_cast<std::int64_t>(layer.kv_heads) * subs;
    const std::int64_t box = static_cast<std::int64_t>(head) * subs + sub;
    const bool int8 = layer.summary_bits == 8;
    const std::int64_t page_bytes = boxes * 2 * dim * (int8 ? 1 : 2) + (int8 ? boxes * 4 : 0);
    unsigned char* at = reinterpret_cast<unsigned char*>(layer.summary) + page * page_bytes;
    auto* bf16 = reinterpret_cast<unsigned short*>(at) + box * 2 * dim;
    auto* codes = reinterpret_cast<signed char*>(at) + box * 2 * dim;
    float* scale = reinterpret_cast<float*>(at + boxes * 2 * dim) + box;
    const bool active = d < dim;
    float lo = INFINITY;
    float hi = -INFINITY;
    if (active) {
        if (int8) {
            lo = static_cast<float>(codes[d]) * *scale;
            hi = static_cast<float>(codes[dim + d]) * *scale;
        } else {
            lo = bf16_bits_to_float(bf16[d]);
            hi = bf16_bits_to_float(bf16[dim + d]);
        }
    }
    bool changed = false;
    const T* k = static_cast<const T*>(layer.k);
    for (std::int32_t j = token; j < tokens; ++j) {
        if (pages[j] != page || slots[j] / lps != sub) {
            continue;
        }
        if (slots[j] % lps == 0) {
            lo = INFINITY;
            hi = -INFINITY;
            changed = true;
        }
        if (active) {
            const float key = to_float(
                k[((static_cast<std::int64_t>(page) * layer.kv_heads + head) * layer.page_size + slots[j]) * dim + d]);
            if (key < lo) {
                lo = key;
                changed = true;
            }
            if (key > hi) {
                hi = key;
                changed = true;
            }
        }
    }
    if (__syncthreads_or(changed ? 1 : 0) == 0) {
        return;  // re-encoding an unchanged box could only widen it
    }
    if (!int8) {
        if (active) {
            bf16[d] = bf16_down_bits(lo);
            bf16[dim + d] = static_cast<unsigned short>(bf16_down_bits(-hi) ^ 0x8000u);
        }
        return;
    }
    // int8, as encode_int8_box in page_pool.cpp: scale s with 127 s >= max |bound|, codes stepped outward.
    const bool empty = __syncthreads_or(active && !(lo <= hi) ? 1 : 0) != 0;
    const float m = block_max(active ? fmaxf(fabsf(lo), fabsf(hi)) : 0.0f, warp_max);
    signed char low = 127;
    signed char high = -127;
    float s = INFINITY;  // empty: decodes to +inf / -inf
    if (!empty && !isfinite(m)) {
        low = -127;
        high = 127;  // an infinite key: the whole line
    } else if (!empty && m == 0.0f) {
        low = 0;
        high = 0;
        s = 0.0f;
    } else if (!empty) {
        s = __fdiv_rn(m, 127.0f);
        while (__fmul_rn(127.0f, s) < m) {
            s = nextafterf(s, INFINITY);
        }
        float c = fminf(fmaxf(floorf(__fdiv_rn(lo, s)), -127.0f), 127.0f);
        while (c > -127.0f && __fmul_rn(c, s) > lo) {
            c -= 1.0f;
        }
        low = static_cast<signed char>(c);
        c = fminf(fmaxf(ceilf(__fdiv_rn(hi, s)), -127.0f), 127.0f);
        while (c < 127.0f && __fmul_rn(c, s) < hi) {
            c += 1.0f;
        }
        high = static_cast<signed char>(c);
    }
    if (active) {
        codes[d] = low;
        codes[dim + d] = high;
    }
    if (d == 0) {
        *scale = s;
    }
}

template <class T>
__global__ void kv_store_kernel(inf_kv_layer layer, const std::int32_t* __restrict__ pages,
                                const std::int32_t* __restrict__ slots, const float* __restrict__ k,
                                const float* __restrict__ v) {
    const std::int32_t token = static_cast<std::int32_t>(blockIdx.x) / layer.kv_heads;
    const std::int32_t head = static_cast<std::int32_t>(blockIdx.x) % layer.kv_heads;
    const std::int32_t page = pages[token];
    const std::int32_t slot = slots[token];
    const std::int32_t dim = layer.head_dim;
    const std::int64_t src = (static_cast<std::int64_t>(token) * layer.kv_heads + head) * dim;
    const std::int64_t dst =
        ((static_cast<std::int64_t>(page) * layer.kv_heads + head) * layer.page_size + slot) * dim;
    T* k_out = static_cast<T*>(layer.k) + dst;
    T* v_out = static_cast<T*>(layer.v) + dst;
    float* summary = layer.summary != nullptr && layer.logical_page_size > 0 ? summary_of(layer, page, head, slot)
                                                                              : nullptr;
    for (std::int32_t d = static_cast<std::int32_t>(threadIdx.x); d < dim; d += static_cast<std::int32_t>(blockDim.x)) {
        const T key = from_float<T>(k[src + d]);
        k_out[d] = key;
        v_out[d] = from_float<T>(v[src + d]);
        if (summary != nullptr) {
            const float stored = to_float(key);
            atomic_min_float(summary + d, stored);
            atomic_max_float(summary + dim + d, stored);
        }
    }
}

}  // namespace

cudaError_t launch_kv_append(const inf_kv_append_params& params, const char** why) noexcept {
    const inf_kv_layer& layer = params.layer;
    if (params.tokens <= 0) {
        return cudaSuccess;
    }
    if (layer.head_dim <= 0 || layer.head_dim > 256 || layer.kv_heads <= 0 || layer.page_size <= 0) {
        *why = "kv_append: head_dim must be 1..256 and kv_heads, page_size positive";
        return cudaErrorInvalidValue;
    }
    const std::int64_t blocks = static_cast<std::int64_t>(params.tokens) * layer.kv_heads;
    if (blocks > 0x7FFFFFFF) {
        *why = "kv_append: tokens * kv_heads exceeds the grid";
        return cudaErrorInvalidValue;
    }
    // One thread per element, rounded up to whole warps.
    const unsigned threads = static_cast<unsigned>((layer.head_dim + 31) / 32 * 32);
    const bool summaries = layer.summary != nullptr && layer.logical_page_size > 0;
    const bool compact = summaries && (layer.summary_bits == 16 || layer.summary_bits == 8);
    if (summaries && !compact) {
        summary_restart_kernel<<<static_cast<unsigned>(blocks), threads>>>(layer, params.pages, params.slots);
        const cudaError_t error = cudaGetLastError();
        if (error != cudaSuccess) {
            *why = "kv_append: summary restart kernel launch";
            return error;
        }
    }
    inf_kv_layer store = layer;
    if (compact) {
        store.summary = nullptr;  // the store kernel's atomics are float32-only; compact_summary_kernel below
    }
    const unsigned grid = static_cast<unsigned>(blocks);
    switch (layer.dtype) {
        case INF_DTYPE_F32:
            kv_store_kernel<float><<<grid, threads>>>(store, params.pages, params.slots, params.k, params.v);
            if (compact) compact_summary_kernel<float><<<grid, threads>>>(layer, params.tokens, params.pages, params.slots);
            break;
        case INF_DTYPE_F16:
            kv_store_kernel<__half><<<grid, threads>>>(store, params.pages, params.slots, params.k, params.v);
            if (compact) compact_summary_kernel<__half><<<grid, threads>>>(layer, params.tokens, params.pages, params.slots);
            break;
        case INF_DTYPE_BF16:
            kv_store_kernel<__nv_bfloat16><<<grid, threads>>>(store, params.pages, params.slots, params.k, params.v);
            if (compact) {
                compact_summary_kernel<__nv_bfloat16><<<grid, threads>>>(layer, params.tokens, params.pages, params.slots);
            }
            break;
        default: *why = "kv_append: unknown dtype"; return cudaErrorInvalidValue;
    }
    const cudaError_t error = cudaGetLastError();
    if (error != cudaSuccess) {
        *why = compact ? "kv_append: store or compact summary kernel launch" : "kv_append: store kernel launch";
    }
    return error;
}

}  // namespace inf::cuda
