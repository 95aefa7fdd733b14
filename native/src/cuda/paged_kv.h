// The paged-KV kernels (kv_append.cu, decode_attention.cu, attention_merge.cu), callable from host code
// compiled by the C++ compiler. Each queues its work on the current device's legacy default stream and
// returns the first launch error (cudaGetLastError after every launch), or an argument error as
// cudaErrorInvalidValue with a static reason in *why.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "attention/attention_params.h"

namespace inf::cuda {

// Stores the keys and values (float32 -> the pool's dtype, round to nearest even) and widens the
// summaries of the logical pages touched.
cudaError_t launch_kv_append(const inf_kv_append_params& params, const char** why) noexcept;

// How attention splits the work of params on a device with sm_count multiprocessors. Deterministic in
// the shape fields of params and sm_count, so the workspace the core sizes with it fits the launch.
struct AttentionPlan {
    int splits;                  // CTAs along the key axis of one (sequence, KV head); 1: no merge
    std::uint64_t workspace_bytes;  // partials of all splits; 0 when splits == 1
};
AttentionPlan plan_attention(const inf_attention_params& params, int sm_count) noexcept;

// MicroAttention (see attention_params.h). Uses params.workspace when the plan splits the key axis and
// params.workspace_bytes covers the plan; otherwise runs unsplit (correct, slower on long lists).
cudaError_t launch_attention(const inf_attention_params& params, int sm_count, int max_shared_bytes,
                             const char** why) noexcept;

// o_out/lse_out = merge of the parts (o_out may be o_parts[0], lse_out lse_parts[0]).
cudaError_t launch_attention_merge(const inf_attention_merge_params& params, const char** why) noexcept;

// Merges the split partials of launch_attention: part_o [splits][rows][head_dim], part_lse
// [splits][rows] -> o [rows][head_dim], lse [rows] (no aliasing).
cudaError_t launch_split_merge(const float* part_o, const float* part_lse, int splits, std::int64_t rows,
                               int head_dim, float* o, float* lse, const char** why) noexcept;

}  // namespace inf::cuda
