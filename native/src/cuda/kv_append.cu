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
    if (summaries) {
        summary_restart_kernel<<<static_cast<unsigned>(blocks), threads>>>(layer, params.pages, params.slots);
        const cudaError_t error = cudaGetLastError();
        if (error != cudaSuccess) {
            *why = "kv_append: summary restart kernel launch";
            return error;
        }
    }
    switch (layer.dtype) {
        case INF_DTYPE_F32:
            kv_store_kernel<float><<<static_cast<unsigned>(blocks), threads>>>(layer, params.pages, params.slots,
                                                                              params.k, params.v);
            break;
        case INF_DTYPE_F16:
            kv_store_kernel<__half><<<static_cast<unsigned>(blocks), threads>>>(layer, params.pages, params.slots,
                                                                               params.k, params.v);
            break;
        case INF_DTYPE_BF16:
            kv_store_kernel<__nv_bfloat16><<<static_cast<unsigned>(blocks), threads>>>(
                layer, params.pages, params.slots, params.k, params.v);
            break;
        default: *why = "kv_append: unknown dtype"; return cudaErrorInvalidValue;
    }
    const cudaError_t error = cudaGetLastError();
    if (error != cudaSuccess) {
        *why = "kv_append: store kernel launch";
    }
    return error;
}

}  // namespace inf::cuda
