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

// Which kernel serves attention batches with many query rows (INFINITE_CUDA_PREFILL, read by plugin.cpp).
enum class PrefillMode {
    kAuto,  // tensor-core prefill kernel where supported and worth it, else the SIMT split-KV kernel
    kSimt,  // always the SIMT split-KV kernel ("simt")
    kMma,   // the tensor-core kernel wherever prefill_supported, whatever the shape's size ("mma")
};

// MicroAttention (see attention_params.h). Uses params.workspace when the plan splits the key axis and
// params.workspace_bytes covers the plan; otherwise runs unsplit (correct, slower on long lists).
// Batches with many query rows go to the tensor-core prefill kernel (prefill_attention.cu) per mode.
cudaError_t launch_attention(const inf_attention_params& params, int sm_count, int max_shared_bytes,
                             PrefillMode mode, const char** why) noexcept;

// The tensor-core prefill kernel (prefill_attention.cu, sm_80+): FlashAttention-2 style, one CTA per
// (sequence, KV head, 64 stacked query rows), no split of the key axis, no workspace.
// Supported: pool dtype bf16 or f16, head_dim 64 or 128, q_dtype F32 or the pool's dtype, page_size a
// multiple of 16, at most 65535 sequences.
bool prefill_supported(const inf_attention_params& params) noexcept;
// Dynamic shared memory of one prefill CTA at head_dim (64 or 128; 0 for others).
int prefill_shared_bytes(int head_dim) noexcept;
// CTAs the prefill kernel launches for params (some exit at once on sequences shorter than max_q).
std::int64_t prefill_ctas(const inf_attention_params& params) noexcept;
// Runs the prefill kernel; cudaErrorInvalidValue with a reason when !prefill_supported(params) or the
// shared memory it needs exceeds max_shared_bytes. The caller checks the device is sm_80 or newer.
cudaError_t launch_prefill_attention(const inf_attention_params& params, int max_shared_bytes,
                                     const char** why) noexcept;

// Page selection (page_select.cu; inf_page_select_params). total_entries = page_starts[sequences] (the
// caller reads it back); keys: scratch of page_select_keys_bytes(params, total_entries) bytes on the
// device (may be null when total_entries is 0). Writes head_page_starts and head_page_indices.
std::uint64_t page_select_keys_bytes(const inf_page_select_params& params, std::int64_t total_entries) noexcept;
cudaError_t launch_page_select(const inf_page_select_params& params, std::int64_t total_entries, void* keys,
                               const char** why) noexcept;

// o_out/lse_out = merge of the parts (o_out may be o_parts[0], lse_out lse_parts[0]).
cudaError_t launch_attention_merge(const inf_attention_merge_params& params, const char** why) noexcept;

// Merges the split partials of launch_attention: part_o [splits][rows][head_dim], part_lse
// [splits][rows] -> o [rows][head_dim], lse [rows] (no aliasing).
cudaError_t launch_split_merge(const float* part_o, const float* part_lse, int splits, std::int64_t rows,
                               int head_dim, float* o, float* lse, const char** why) noexcept;

}  // namespace inf::cuda
