// CPU page selection for retrieval heads (LServe): scores every entry of a sequence's page table from
// the pool's key summaries with the query, and keeps the best budget_pages entries, the newest always.
// The core (cpu_backend.cpp) calls these after validating every index.
#pragma once

#include <cstdint>

#include "attention/attention_params.h"

namespace inf::cpu {

// Bytes of scratch page_select() needs for params (scores, prepared queries, per-thread ranking keys).
std::uint64_t page_select_workspace_bytes(const inf_page_select_params& params);

// Logical page score sum_i max(q_i * kmax_i, q_i * kmin_i) in float32 (AVX-512 / AVX2 / scalar); a
// physical page scores the max of its logical pages that hold keys below kv_length; per KV head lists take
// the max over the group's q heads; top budget_pages entries with the newest forced in, ascending.
// Parallel over blocks of entries (scoring) and (sequence, KV head) (ranking). Afterwards the workspace
// begins with the scores, float [sequence * kv_heads + kv_head][entry (widest)][G], slot 0 holding the
// group's best for per-KV-head lists (the distributed exchange reads them).
void page_select(const inf_page_select_params& params);

// The scores page_select gives logical page sub of (page, head) for query rows q [groups][head_dim], read
// from the summaries in any summary_bits form (the int8 scale applied to the finished sum): for tests.
void score_logical_page(const inf_kv_layer& layer, std::int32_t page, std::int32_t head, std::int32_t sub,
                        const float* q, int groups, float* out);

// True when int8 summaries of head_dim are scored with byte dot products (AVX-512 VNNI active): the query
// is then quantised to bytes and the score is the decoded box's bound plus at most one quantisation step
// per code (still an upper bound): for tests.
bool page_select_quantises_query(int head_dim, int summary_bits);

}  // namespace inf::cpu
