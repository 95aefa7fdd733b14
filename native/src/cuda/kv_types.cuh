// Storage types of the paged KV cache on the GPU and the conversions the kernels share.
//
// Every kernel is instantiated once per storage dtype (float, __half, __nv_bfloat16) and no more: the
// head dimension, the GQA group and the page size stay run-time values, which keeps the plug-in's
// compile time and size bounded (CI builds on 2 cores). The one exception is the tensor-core prefill
// kernel (prefill_attention.cu), whose fragment arrays need a compile-time head_dim: 2 dtypes x head_dim
// 64/128 = 4 instantiations.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "infinite/infinite.h"

namespace inf::cuda {

// f32 -> storage, round to nearest even (the __float2half_rn / __float2bfloat16_rn intrinsics).
template <class T>
__device__ __forceinline__ T from_float(float x);
template <>
__device__ __forceinline__ float from_float<float>(float x) {
    return x;
}
template <>
__device__ __forceinline__ __half from_float<__half>(float x) {
    return __float2half_rn(x);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
    return __float2bfloat16_rn(x);
}

__device__ __forceinline__ float to_float(float x) {
    return x;
}
__device__ __forceinline__ float to_float(__half x) {
    return __half2float(x);
}
__device__ __forceinline__ float to_float(__nv_bfloat16 x) {
    return __bfloat162float(x);
}

// Eight consecutive elements as floats. p must be aligned to 8 elements' bytes: 16 bytes for 2-byte
// types, 32 for float. head_dim is a multiple of 8 and every row starts at a multiple of head_dim
// elements of a cudaMalloc'd (256-byte aligned) array, so rows and their 8-element chunks are aligned.
// 2-byte types: one 16-byte load; float: two.
template <class T>
__device__ __forceinline__ void load8(const T* p, float (&out)[8]);
template <>
__device__ __forceinline__ void load8<float>(const float* p, float (&out)[8]) {
    const float4 a = reinterpret_cast<const float4*>(p)[0];
    const float4 b = reinterpret_cast<const float4*>(p)[1];
    out[0] = a.x; out[1] = a.y; out[2] = a.z; out[3] = a.w;
    out[4] = b.x; out[5] = b.y; out[6] = b.z; out[7] = b.w;
}
template <>
__device__ __forceinline__ void load8<__half>(const __half* p, float (&out)[8]) {
    const uint4 raw = *reinterpret_cast<const uint4*>(p);
    const auto* h = reinterpret_cast<const __half2*>(&raw);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const float2 f = __half22float2(h[i]);
        out[2 * i] = f.x;
        out[2 * i + 1] = f.y;
    }
}
template <>
__device__ __forceinline__ void load8<__nv_bfloat16>(const __nv_bfloat16* p, float (&out)[8]) {
    const uint4 raw = *reinterpret_cast<const uint4*>(p);
    // bf16 -> f32 is exact: the bf16 bits are the high half of the float.
    const unsigned words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        out[2 * i] = __uint_as_float(words[i] << 16);
        out[2 * i + 1] = __uint_as_float(words[i] & 0xFFFF0000u);
    }
}

// Element i of a q array of dtype (F32 or the pool's 2-byte type) as float.
__device__ __forceinline__ float load_q(const void* q, inf_dtype dtype, std::int64_t i) {
    switch (dtype) {
        case INF_DTYPE_F16: return __half2float(static_cast<const __half*>(q)[i]);
        case INF_DTYPE_BF16: return __bfloat162float(static_cast<const __nv_bfloat16*>(q)[i]);
        default: return static_cast<const float*>(q)[i];
    }
}

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

}  // namespace inf::cuda
