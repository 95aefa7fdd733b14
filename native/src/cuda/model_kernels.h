// The element-wise kernels of the model step (model_kernels.cu), callable from host code compiled by the
// C++ compiler. Each queues its work on the current device's legacy default stream and returns the launch
// error (cudaGetLastError). `out_dtype` is the dtype the next GEMM reads (INF_DTYPE_F32 or INF_DTYPE_BF16):
// kernels that feed a GEMM write it directly, so no separate conversion pass runs.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "infinite/infinite.h"

namespace inf::cuda {

// x[t][:] = float(table[token_ids[t]][:]); table is [vocab][dim] of table_dtype.
cudaError_t launch_embed(const void* table, inf_dtype table_dtype, const std::int32_t* token_ids, std::int32_t tokens,
                         std::int32_t dim, float* x) noexcept;

// out[r][:] = x[row][:] / sqrt(mean(x[row]^2) + eps) * w, row = rows ? rows[r] : r; out is out_dtype.
cudaError_t launch_rms_norm(const float* x, const std::int32_t* rows, std::int32_t count, std::int32_t dim,
                            const float* w, float eps, void* out, inf_dtype out_dtype) noexcept;

// Splits qkv [tokens][q_width + 2 kv_width] into q [tokens][q_width], k and v [tokens][kv_width], rotating
// q and k (RoPE: angle = position * inv_freq[i] in float64, style INTERLEAVED pairs (2i, 2i+1) or HALF
// pairs (i, i + head_dim / 2)), as rope.cpp does on the CPU.
cudaError_t launch_split_rope(const float* qkv, const std::int32_t* positions, const double* inv_freq,
                              std::int32_t tokens, std::int32_t q_heads, std::int32_t kv_heads, std::int32_t head_dim,
                              inf_rope_style style, float* q, float* k, float* v) noexcept;

// act[t][i] = silu(gu[t][i]) * gu[t][ffn + i] (gate columns, then up columns of each row); act is out_dtype.
cudaError_t launch_silu_mul(const float* gate_up, std::int32_t tokens, std::int32_t ffn, void* act,
                            inf_dtype out_dtype) noexcept;

// out[i] = bf16(in[i]), round to nearest even.
cudaError_t launch_to_bf16(const float* in, std::int64_t count, void* out) noexcept;

}  // namespace inf::cuda
