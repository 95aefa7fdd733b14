// CPU page selection for retrieval heads (LServe): scores every entry of a sequence's page table from
// the pool's key summaries with the query, and keeps the best budget_pages entries, the newest always.
// The core (cpu_backend.cpp) calls these after validating every index.
#pragma once

#include <cstdint>

#include "attention/attention_params.h"

namespace inf::cpu {

// Bytes of scratch page_select() needs for params (per-thread scores and queries).
std::uint64_t page_select_workspace_bytes(const inf_page_select_params& params);

// Logical page score sum_i max(q_i * kmax_i, q_i * kmin_i) in float32 (AVX-512 / AVX2 / scalar); a
// physical page scores the max of its logical pages that hold keys below kv_length; per KV head lists take
// the max over the group's q heads; top budget_pages entries with the newest forced in, ascending.
// Parallel over (sequence, KV head).
void page_select(const inf_page_select_params& params);

}  // namespace inf::cpu
