// The element-wise kernels of the model step. Memory-bound and small next to the GEMMs and attention, so
// the mappings are plain: one CTA per row for the row-wise ones (norm, RoPE), a grid-stride loop for the
// flat ones. Two instantiations at most per kernel (float and bf16 output), which keeps the plug-in's
// compile time bounded.
#include <cuda_bf16.h>

#include "cuda/kv_types.cuh"
#include "cuda/model_kernels.h"

namespace inf::cuda {

namespace {

constexpr int kThreads = 256;

// Enough CTAs of kThreads for count elements, capped (the loops stride over the rest).
unsigned flat_blocks(std::int64_t count) {
    const std::int64_t blocks = (count + kThreads - 1) / kThreads;
    return static_cast<unsigned>(blocks < 65535 ? (blocks > 0 ? blocks : 1) : 65535);
}

template <class T>
__global__ void embed_kernel(const T* table, const std::int32_t* token_ids, std::int32_t dim, float* x) {
    const std::int64_t t = blockIdx.x;
    const T* row = table + static_cast<std::int64_t>(token_ids[t]) * dim;
    for (std::int32_t i = threadIdx.x; i < dim; i += blockDim.x) {
        x[t * dim + i] = to_float(row[i]);
    }
}

// Sum over the CTA (kThreads threads); every thread gets the result.
__device__ float block_sum(float value) {
    __shared__ float partial[kThreads / 32];
    __shared__ float total;
    for (int offset = 16; offset > 0; offset >>= 1) {
        value += __shfl_xor_sync(0xFFFFFFFFu, value, offset);
    }
    const int lane = threadIdx.x % 32;
    const int warp = threadIdx.x / 32;
    if (lane == 0) {
        partial[warp] = value;
    }
    __syncthreads();
    if (warp == 0) {
        float sum = lane < kThreads / 32 ? partial[lane] : 0.0f;
        for (int offset = 16; offset > 0; offset >>= 1) {
            sum += __shfl_xor_sync(0xFFFFFFFFu, sum, offset);
        }
        if (lane == 0) {
            total = sum;
        }
    }
    __syncthreads();
    return total;
}

template <class T>
__global__ void rms_norm_kernel(const float* x, const std::int32_t* rows, std::int32_t dim, const float* w, float eps,
                                T* out) {
    const std::int64_t r = blockIdx.x;
    const std::int64_t source = rows != nullptr ? rows[r] : r;
    const float* in = x + source * dim;
    float sum = 0.0f;
    for (std::int32_t i = threadIdx.x; i < dim; i += blockDim.x) {
        sum += in[i] * in[i];
    }
    sum = block_sum(sum);
    const float inv = 1.0f / sqrtf(sum / static_cast<float>(dim) + eps);
    for (std::int32_t i = threadIdx.x; i < dim; i += blockDim.x) {
        out[r * dim + i] = from_float<T>(in[i] * inv * w[i]);
    }
}

// One CTA per token: first the rotated pairs of every q and k head, then the copy of v.
__global__ void split_rope_kernel(const float* qkv, const std::int32_t* positions, const double* inv_freq,
                                  std::int32_t q_heads, std::int32_t kv_heads, std::int32_t head_dim, int half_style,
                                  float* q, float* k, float* v) {
    const std::int64_t t = blockIdx.x;
    const std::int32_t half = head_dim / 2;
    const std::int64_t q_width = static_cast<std::int64_t>(q_heads) * head_dim;
    const std::int64_t kv_width = static_cast<std::int64_t>(kv_heads) * head_dim;
    const float* row = qkv + t * (q_width + 2 * kv_width);
    const double position = positions[t];
    const std::int32_t pairs = (q_heads + kv_heads) * half;
    for (std::int32_t i = threadIdx.x; i < pairs; i += blockDim.x) {
        const std::int32_t head = i / half;
        const std::int32_t p = i % half;
        const std::int32_t a = half_style ? p : 2 * p;
        const std::int32_t b = half_style ? p + half : 2 * p + 1;
        // In float64 like rope_tables, then rounded: the tables the CPU step uses.
        double s = 0.0;
        double c = 0.0;
        sincos(position * inv_freq[p], &s, &c);
        const float sf = static_cast<float>(s);
        const float cf = static_cast<float>(c);
        const float* src = row + static_cast<std::int64_t>(head) * head_dim;  // k heads follow q heads in the row
        float* dst = head < q_heads ? q + t * q_width + static_cast<std::int64_t>(head) * head_dim
                                    : k + t * kv_width + static_cast<std::int64_t>(head - q_heads) * head_dim;
        const float xa = src[a];
        const float xb = src[b];
        dst[a] = xa * cf - xb * sf;
        dst[b] = xa * sf + xb * cf;
    }
    const float* v_src = row + q_width + kv_width;
    for (std::int64_t i = threadIdx.x; i < kv_width; i += blockDim.x) {
        v[t * kv_width + i] = v_src[i];
    }
}

template <class T>
__global__ void silu_mul_kernel(const float* gate_up, std::int32_t tokens, std::int32_t ffn, T* act) {
    const std::int64_t count = static_cast<std::int64_t>(tokens) * ffn;
    for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < count;
         i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
        const std::int64_t t = i / ffn;
        const std::int64_t j = i % ffn;
        const float g = gate_up[t * 2 * ffn + j];
        const float u = gate_up[t * 2 * ffn + ffn + j];
        act[i] = from_float<T>(g / (1.0f + expf(-g)) * u);
    }
}

__global__ void to_bf16_kernel(const float* in, std::int64_t count, __nv_bfloat16* out) {
    for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < count;
         i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
        out[i] = __float2bfloat16_rn(in[i]);
    }
}

}  // namespace

cudaError_t launch_embed(const void* table, inf_dtype table_dtype, const std::int32_t* token_ids, std::int32_t tokens,
                         std::int32_t dim, float* x) noexcept {
    if (tokens <= 0) {
        return cudaSuccess;
    }
    if (table_dtype == INF_DTYPE_BF16) {
        embed_kernel<<<tokens, kThreads>>>(static_cast<const __nv_bfloat16*>(table), token_ids, dim, x);
    } else {
        embed_kernel<<<tokens, kThreads>>>(static_cast<const float*>(table), token_ids, dim, x);
    }
    return cudaGetLastError();
}

cudaError_t launch_rms_norm(const float* x, const std::int32_t* rows, std::int32_t count, std::int32_t dim,
                            const float* w, float eps, void* out, inf_dtype out_dtype) noexcept {
    if (count <= 0) {
        return cudaSuccess;
    }
    if (out_dtype == INF_DTYPE_BF16) {
        rms_norm_kernel<<<count, kThreads>>>(x, rows, dim, w, eps, static_cast<__nv_bfloat16*>(out));
    } else {
        rms_norm_kernel<<<count, kThreads>>>(x, rows, dim, w, eps, static_cast<float*>(out));
    }
    return cudaGetLastError();
}

cudaError_t launch_split_rope(const float* qkv, const std::int32_t* positions, const double* inv_freq,
                              std::int32_t tokens, std::int32_t q_heads, std::int32_t kv_heads, std::int32_t head_dim,
                              inf_rope_style style, float* q, float* k, float* v) noexcept {
    if (tokens <= 0) {
        return cudaSuccess;
    }
    split_rope_kernel<<<tokens, kThreads>>>(qkv, positions, inv_freq, q_heads, kv_heads, head_dim,
                                            style == INF_ROPE_STYLE_HALF ? 1 : 0, q, k, v);
    return cudaGetLastError();
}

cudaError_t launch_silu_mul(const float* gate_up, std::int32_t tokens, std::int32_t ffn, void* act,
                            inf_dtype out_dtype) noexcept {
    const std::int64_t count = static_cast<std::int64_t>(tokens) * ffn;
    if (count <= 0) {
        return cudaSuccess;
    }
    if (out_dtype == INF_DTYPE_BF16) {
        silu_mul_kernel<<<flat_blocks(count), kThreads>>>(gate_up, tokens, ffn, static_cast<__nv_bfloat16*>(act));
    } else {
        silu_mul_kernel<<<flat_blocks(count), kThreads>>>(gate_up, tokens, ffn, static_cast<float*>(act));
    }
    return cudaGetLastError();
}

cudaError_t launch_to_bf16(const float* in, std::int64_t count, void* out) noexcept {
    if (count <= 0) {
        return cudaSuccess;
    }
    to_bf16_kernel<<<flat_blocks(count), kThreads>>>(in, count, static_cast<__nv_bfloat16*>(out));
    return cudaGetLastError();
}

}  // namespace inf::cuda
