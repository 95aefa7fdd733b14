// Validation of one inf_model_step call: the plan's arrays against the model and the pool, and the
// sparse fields (Λ windows, budget, reusable selection slots), page_positions and the exchange of a
// distributed step (exchange_checks.h). Everything the step will index is checked here, before any work, so
// a failed call leaves the pool untouched.
#pragma once

#include <cstdint>

#include "infinite/infinite.h"
#include "kv/page_pool.h"

namespace inf {

class Communicator;

// What the checks learned and the step needs.
struct StepShape {
    bool sparse = false;
    inf_sparse_step sparse_step{};  // zero when !sparse
    std::int32_t budget_pages = 0;        // max(1, budget_tokens / page_size) when budget_tokens > 0
    std::int32_t lists_per_sequence = 0;  // kv_heads, or q_heads with per_query_head
    std::int64_t slot_ints = 0;           // ints one selection slot needs (see selection_slot_ints)
    // A distributed step (plan.exchange non-null): the exchange as read, its communicator, and the served
    // parts' shape (rows, longest part, most page entries of one part).
    bool exchange = false;
    inf_step_exchange ex{};
    Communicator* comm = nullptr;
    std::int32_t served_rows = 0;
    std::int32_t served_max_q = 0;
    std::int32_t served_widest = 0;
    // A distributed sparse step where some sequence (at its home) or served part selects pages: the home
    // takes the global top-k over every instance's scores (model/step_exchange.h, "Page selection").
    bool global_selection = false;
    // Streaming heads in a ring (plan.sparse->ring, model/streaming_ring.h): the ring as read, its pool, the
    // pages of its sink (ceil(max(decode, prefill sink tokens) / ring page size)).
    bool ring = false;
    inf_streaming_ring ring_desc{};
    PagePool* ring_pool = nullptr;
    std::int32_t ring_sink_pages = 0;
};

// A decode row: a sequence that feeds exactly one token this step.
inline bool is_decode(const inf_step_plan& plan, std::int32_t s) noexcept {
    return plan.q_starts[s + 1] - plan.q_starts[s] == 1;
}

// Whether sequence s reads selected pages on its retrieval heads this step.
bool needs_selection(const inf_step_plan& plan, const StepShape& shape, std::int32_t s) noexcept;

// Whether served part i of a distributed step is a decode that selects pages (needs_selection at its home).
bool served_selects(const StepShape& shape, std::int32_t i) noexcept;

// Ints of one selection slot: for every layer and list, a count then budget_pages entry indices:
// layers * lists_per_sequence * (1 + budget_pages).
std::int64_t selection_slot_ints(std::int32_t layers, std::int32_t lists_per_sequence, std::int32_t budget_pages) noexcept;

// Throws inf::Error naming the first bad field as "plan-><field>" (or "plan->sparse-><field>",
// "plan->exchange-><field>"). comm: the communicator of plan.exchange->comm (null when plan.exchange is);
// ring_pool: the pool of plan.sparse->ring (null when there is no ring).
StepShape check_step(const inf_model_config& model, const PagePool& pool, const inf_step_plan& plan,
                     const float* logits, Communicator* comm = nullptr, PagePool* ring_pool = nullptr);

// Heads of layer layer whose streaming flag is (streaming) or is not (!streaming) set; flags may be null
// (no streaming head).
std::int32_t count_heads(const std::int32_t* flags, std::int32_t kv_heads, std::int32_t layer, bool streaming) noexcept;

}  // namespace inf
