// CPU kernels of the paged-KV operations (attention_params.h): float32 math over f32/f16/bf16
// storage, AVX-512 / AVX2 with run-time dispatch and a scalar fallback, spread over the CPU thread pool.
// The core (cpu_backend.cpp) calls these after validating every index.
#pragma once

#include <cstdint>

#include "attention/attention_params.h"

namespace inf::cpu {

// Stores tokens' keys and values and widens the touched summaries.
void kv_append(const inf_kv_append_params& params);

// Bytes of scratch attention() needs for params (split-KV partials); params.workspace may be null when 0.
std::uint64_t attention_workspace_bytes(const inf_attention_params& params);

// MicroAttention over a batch; long page lists are split across threads and merged (Flash-Decoding style).
void attention(const inf_attention_params& params);

// Exact merge of partial (o, lse) results.
void attention_merge(const inf_attention_merge_params& params);

}  // namespace inf::cpu
