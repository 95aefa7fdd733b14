#include "model/step_checks.h"

#include <algorithm>
#include <cstddef>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "api/batch_checks.h"
#include "api/checks.h"
#include "core/status.h"
#include "model/exchange_checks.h"
#include "model/streaming_ring.h"

namespace inf {

namespace {

constexpr const char* kPlan = "plan->";
constexpr const char* kSparse = "plan->sparse->";

// First key position of entry j of sequence s (plan.page_positions or the default).
std::int64_t entry_position(const inf_step_plan& plan, std::int32_t s, std::int32_t j, std::int32_t page_size) noexcept {
    return plan.page_positions != nullptr ? plan.page_positions[j] : std::int64_t{j - plan.page_starts[s]} * page_size;
}

// Whether plan.page_positions (non-null, checked) are the default ones.
bool default_positions(const inf_step_plan& plan, std::int32_t page_size) noexcept {
    for (std::int32_t s = 0; s < plan.sequences; ++s) {
        for (std::int32_t j = plan.page_starts[s]; j < plan.page_starts[s + 1]; ++j) {
            if (plan.page_positions[j] != std::int64_t{j - plan.page_starts[s]} * page_size) {
                return false;
            }
        }
    }
    return true;
}

void check_pool(const inf_model_config& model, const PagePool& pool, const char* name = "pool") {
    const inf_page_pool_config& p = pool.config();
    if (p.layers != model.layers || p.kv_heads != model.kv_heads || p.head_dim != model.head_dim) {
        fail(INF_STATUS_INVALID_ARGUMENT, name, " has layers ", p.layers, ", kv_heads ", p.kv_heads, ", head_dim ",
             p.head_dim, " but the model has layers ", model.layers, ", kv_heads ", model.kv_heads, ", head_dim ",
             model.head_dim);
    }
}

void check_tokens(const inf_model_config& model, const inf_step_plan& plan) {
    api::require_array(plan.q_starts, kPlan, "q_starts");
    api::check_prefix(plan.q_starts, plan.sequences, kPlan, "q_starts");
    if (plan.q_starts[plan.sequences] != plan.tokens) {
        fail(INF_STATUS_INVALID_ARGUMENT, "plan->q_starts[", plan.sequences, "] (", plan.q_starts[plan.sequences],
             ") must equal plan->tokens (", plan.tokens, ")");
    }
    if (plan.tokens > 0) {
        api::require_array(plan.token_ids, kPlan, "token_ids");
        api::require_array(plan.positions, kPlan, "positions");
    }
    for (std::int32_t i = 0; i < plan.tokens; ++i) {
        if (plan.token_ids[i] < 0 || plan.token_ids[i] >= model.vocab_size) {
            fail(INF_STATUS_OUT_OF_RANGE, "plan->token_ids[", i, "] (", plan.token_ids[i],
                 ") is out of range: the vocabulary has ", model.vocab_size, " tokens");
        }
    }
    if (plan.sequences > 0) {  // an instance that only serves peers' parts may pass none
        api::require_array(plan.kv_lengths, kPlan, "kv_lengths");
    }
    for (std::int32_t s = 0; s < plan.sequences; ++s) {
        const std::int32_t first = plan.q_starts[s];
        const std::int32_t last = plan.q_starts[s + 1] - 1;
        if (last < first) {
            fail(INF_STATUS_INVALID_ARGUMENT, "plan->q_starts: sequence ", s, " feeds no token (each sequence needs one or more)");
        }
        if (plan.positions[first] < 0) {
            fail(INF_STATUS_INVALID_ARGUMENT, "plan->positions[", first, "] (", plan.positions[first], ") must be >= 0");
        }
        for (std::int32_t i = first + 1; i <= last; ++i) {
            if (plan.positions[i] != plan.positions[i - 1] + 1) {
                fail(INF_STATUS_INVALID_ARGUMENT, "plan->positions[", i, "] (", plan.positions[i],
                     ") does not follow plan->positions[", i - 1, "] (", plan.positions[i - 1], "): the positions of sequence ",
                     s, " must be consecutive");
            }
        }
        if (plan.positions[last] != plan.kv_lengths[s] - 1) {
            fail(INF_STATUS_INVALID_ARGUMENT, "plan->positions[", last, "] (", plan.positions[last],
                 "), the last position of sequence ", s, ", must be plan->kv_lengths[", s, "] - 1 (", plan.kv_lengths[s] - 1,
                 ")");
        }
    }
}

// page_positions (optional): per sequence, ascending multiples of the page size whose page of keys fits int32.
void check_page_positions(const PagePool& pool, const inf_step_plan& plan) {
    const std::int32_t page_size = pool.config().page_size;
    const std::int32_t last = std::numeric_limits<std::int32_t>::max() - page_size + 1;
    for (std::int32_t s = 0; s < plan.sequences; ++s) {
        for (std::int32_t j = plan.page_starts[s]; j < plan.page_starts[s + 1]; ++j) {
            const std::int32_t p = plan.page_positions[j];
            if (p < 0 || p % page_size != 0 || p > last) {
                fail(INF_STATUS_INVALID_ARGUMENT, "plan->page_positions[", j, "] (", p, ") must be a multiple of the page size (",
                     page_size, ") from 0 to ", last);
            }
            if (j > plan.page_starts[s] && p <= plan.page_positions[j - 1]) {
                fail(INF_STATUS_INVALID_ARGUMENT, "plan->page_positions[", j, "] (", p, ") must be greater than plan->page_positions[",
                     j - 1, "] (", plan.page_positions[j - 1], "): the entries of sequence ", s, " must be ascending");
            }
        }
    }
}

// Every token the step appends needs the entry that covers its position, or (distributed step) a remote part
// of its sequence that sends K and V to the peer that stores it. Positions and entries are both ascending.
void check_token_pages(const PagePool& pool, const inf_step_plan& plan, const StepShape& shape) {
    const std::int32_t page_size = pool.config().page_size;
    for (std::int32_t s = 0; s < plan.sequences; ++s) {
        std::int32_t j = plan.page_starts[s];
        const std::int32_t end = plan.page_starts[s + 1];
        for (std::int32_t t = plan.q_starts[s]; t < plan.q_starts[s + 1]; ++t) {
            const std::int64_t p = plan.positions[t];
            while (j < end && entry_position(plan, s, j, page_size) + page_size <= p) {
                ++j;
            }
            if (j < end && entry_position(plan, s, j, page_size) <= p) {
                continue;
            }
            if (shape.exchange && remote_sends_kv(shape.ex, s)) {
                continue;
            }
            if (shape.exchange) {
                fail(INF_STATUS_INVALID_ARGUMENT, "plan: no entry of the page table of sequence ", s, " covers position ", p,
                     " (token ", t, ") and no remote part of sequence ", s,
                     " sends K and V (plan->exchange->remote_sends_kv) to the peer that stores it");
            }
            fail(INF_STATUS_INVALID_ARGUMENT, "plan: no entry of the page table of sequence ", s, " covers position ", p,
                 " (token ", t, "): the table must hold the page of every token the step appends");
        }
    }
}

void check_pages(const PagePool& pool, const inf_step_plan& plan, const StepShape& shape) {
    const std::int32_t page_size = pool.config().page_size;
    api::require_array(plan.page_starts, kPlan, "page_starts");
    api::check_prefix(plan.page_starts, plan.sequences, kPlan, "page_starts");
    for (std::int32_t s = 0; s < plan.sequences; ++s) {
        const std::int64_t count = std::int64_t{plan.page_starts[s + 1]} - plan.page_starts[s];
        if (plan.page_positions == nullptr && count * page_size > std::numeric_limits<std::int32_t>::max()) {
            fail(INF_STATUS_OUT_OF_RANGE, "plan->page_starts: sequence ", s, " has ", count, " pages of ", page_size,
                 " keys: positions beyond int32");
        }
        // One instance, default positions: the table covers the whole sequence (as it always did).
        if (plan.page_positions == nullptr && !shape.exchange && count * page_size < plan.kv_lengths[s]) {
            fail(INF_STATUS_OUT_OF_RANGE, "plan->page_starts: sequence ", s, " has ", count, count == 1 ? " page" : " pages",
                 " (", count * page_size, " keys) but plan->kv_lengths[", s, "] is ", plan.kv_lengths[s]);
        }
    }
    const std::int32_t entries = plan.page_starts[plan.sequences];
    if (entries > 0) {
        api::require_array(plan.page_ids, kPlan, "page_ids");
    }
    for (std::int32_t j = 0; j < entries; ++j) {
        if (plan.page_ids[j] < 0 || plan.page_ids[j] >= pool.config().pages) {
            fail(INF_STATUS_OUT_OF_RANGE, "plan->page_ids[", j, "] (", plan.page_ids[j], ") is out of range: the pool has ",
                 pool.config().pages, " pages");
        }
    }
    if (plan.page_positions != nullptr) {
        check_page_positions(pool, plan);
    }
    if (plan.page_positions != nullptr || shape.exchange) {
        check_token_pages(pool, plan, shape);
    }
}

void check_logits(const inf_step_plan& plan, const float* logits) {
    if (plan.logit_rows < 0) {
        fail(INF_STATUS_INVALID_ARGUMENT, "plan->logit_rows (", plan.logit_rows, ") must be >= 0");
    }
    if (plan.logit_rows == 0) {
        return;
    }
    api::require_array(plan.logit_tokens, kPlan, "logit_tokens");
    api::require_pointer(logits, "logits");
    for (std::int32_t r = 0; r < plan.logit_rows; ++r) {
        if (plan.logit_tokens[r] < 0 || plan.logit_tokens[r] >= plan.tokens) {
            fail(INF_STATUS_OUT_OF_RANGE, "plan->logit_tokens[", r, "] (", plan.logit_tokens[r],
                 ") is out of range: the step has ", plan.tokens, " tokens");
        }
    }
}

void check_window(std::int32_t sink, std::int32_t local, bool any_streaming, const char* sink_field,
                  const char* local_field) {
    if (sink < 0) {
        fail(INF_STATUS_INVALID_ARGUMENT, kSparse, sink_field, " (", sink, ") must be >= 0");
    }
    if (local < 0 || (any_streaming && local < 1)) {
        fail(INF_STATUS_INVALID_ARGUMENT, kSparse, local_field, " (", local, ") must be >= 1 when streaming heads are marked");
    }
}

// Stored lists reused this step must index the sequence's current entries, ascending, within budget. Lists of
// streaming heads are never read (the selector leaves them empty), so they are not checked.
void check_stored(const inf_model_config& model, const inf_step_plan& plan, const StepShape& shape, std::int32_t s) {
    const std::int32_t layers = model.layers;
    const inf_sparse_step& sp = shape.sparse_step;
    const std::int32_t slot = sp.selection_slots[s];
    const std::int32_t* base = sp.selection_store + std::int64_t{slot} * sp.slot_ints;
    const std::int32_t count = plan.page_starts[s + 1] - plan.page_starts[s];
    const std::int64_t stride = 1 + shape.budget_pages;
    for (std::int64_t list = 0; list < std::int64_t{layers} * shape.lists_per_sequence; ++list) {
        const std::int32_t* entry = base + list * stride;
        const std::int64_t layer = list / shape.lists_per_sequence;
        const std::int64_t head = list % shape.lists_per_sequence;
        const std::int64_t kv_head = shape.lists_per_sequence == model.kv_heads ? head : head / (model.q_heads / model.kv_heads);
        if (shape.ring) {
            // A ring step's lists are those of the layer's retrieval heads, compacted: the rest are unused.
            if (kv_head >= count_heads(sp.streaming_heads, model.kv_heads, static_cast<std::int32_t>(layer), false)) {
                continue;
            }
        } else if (sp.streaming_heads != nullptr && sp.streaming_heads[layer * model.kv_heads + kv_head] != 0) {
            continue;
        }
        if (entry[0] < 1 || entry[0] > shape.budget_pages) {
            fail(INF_STATUS_INVALID_ARGUMENT, "plan->sparse->selection_store slot ", slot, " (sequence ", s, "), layer ",
                 layer, ", list ", head, ": count ", entry[0], " must be from 1 to ", shape.budget_pages,
                 " (reselect it: plan->sparse->reselect[", s, "] = 1)");
        }
        for (std::int32_t i = 1; i <= entry[0]; ++i) {
            if (entry[i] < 0 || entry[i] >= count || (i > 1 && entry[i] <= entry[i - 1])) {
                fail(INF_STATUS_OUT_OF_RANGE, "plan->sparse->selection_store slot ", slot, " (sequence ", s, "), layer ",
                     layer, ", list ", head, ": entry ", entry[i], " is out of range or out of order: sequence ", s,
                     " has ", count, " page entries now");
            }
        }
    }
}

void check_sparse(const inf_model_config& model, const PagePool& pool, const inf_step_plan& plan, StepShape& shape) {
    // A caller built before the ring field (its size ends there) reads it as null.
    const inf_sparse_step sp = api::read_versioned(plan.sparse, "plan->sparse", "inf_sparse_step",
                                                   offsetof(inf_sparse_step, ring));
    shape.sparse = true;
    shape.sparse_step = sp;
    bool any_streaming = false;
    if (sp.streaming_heads != nullptr) {
        for (std::int64_t i = 0; i < std::int64_t{model.layers} * model.kv_heads; ++i) {
            if (sp.streaming_heads[i] != 0 && sp.streaming_heads[i] != 1) {
                fail(INF_STATUS_INVALID_ARGUMENT, "plan->sparse->streaming_heads[", i, "] (layer ", i / model.kv_heads,
                     ", KV head ", i % model.kv_heads, ") is ", sp.streaming_heads[i], ": must be 0 or 1");
            }
            any_streaming = any_streaming || sp.streaming_heads[i] != 0;
        }
    }
    check_window(sp.decode_sink_tokens, sp.decode_local_tokens, any_streaming, "decode_sink_tokens", "decode_local_tokens");
    check_window(sp.prefill_sink_tokens, sp.prefill_local_tokens, any_streaming, "prefill_sink_tokens",
                 "prefill_local_tokens");
    if (sp.per_query_head != 0 && sp.per_query_head != 1) {
        fail(INF_STATUS_INVALID_ARGUMENT, "plan->sparse->per_query_head (", sp.per_query_head, ") must be 0 or 1");
    }
    const std::int32_t page_size = pool.config().page_size;
    if (sp.budget_tokens < 0 || (sp.budget_tokens > 0 && sp.budget_tokens < page_size)) {
        fail(INF_STATUS_INVALID_ARGUMENT, "plan->sparse->budget_tokens (", sp.budget_tokens,
             ") must be 0 (no selection) or at least one page (", page_size, ")");
    }
    if (sp.budget_tokens == 0) {
        return;
    }
    shape.budget_pages = std::max(1, sp.budget_tokens / page_size);
    shape.lists_per_sequence = sp.per_query_head != 0 ? model.q_heads : model.kv_heads;
    shape.slot_ints = selection_slot_ints(model.layers, shape.lists_per_sequence, shape.budget_pages);
    bool any_selection = false;
    for (std::int32_t s = 0; s < plan.sequences; ++s) {
        any_selection = any_selection || needs_selection(plan, shape, s);
    }
    if (any_selection && pool.config().logical_page_size == 0) {
        fail(INF_STATUS_UNSUPPORTED, "plan->sparse->budget_tokens selects pages but the pool keeps no summaries "
             "(its logical_page_size is 0)");
    }
    if (sp.selection_store == nullptr) {
        return;
    }
    if (sp.slot_ints < shape.slot_ints) {
        fail(INF_STATUS_OUT_OF_RANGE, "plan->sparse->slot_ints (", sp.slot_ints, ") is too small: a slot needs ",
             shape.slot_ints, " ints (layers ", model.layers, " * lists ", shape.lists_per_sequence,
             " * (1 + budget pages ", shape.budget_pages, "))");
    }
    api::require_array(sp.selection_slots, kSparse, "selection_slots");
    api::require_array(sp.reselect, kSparse, "reselect");
    for (std::int32_t s = 0; s < plan.sequences; ++s) {
        if (!needs_selection(plan, shape, s)) {
            continue;
        }
        if (sp.selection_slots[s] < 0) {
            fail(INF_STATUS_OUT_OF_RANGE, "plan->sparse->selection_slots[", s, "] (", sp.selection_slots[s], ") must be >= 0");
        }
        // Quadratic in the selecting sequences (a decode batch), but allocation-free on the hot path.
        for (std::int32_t other = 0; other < s; ++other) {
            if (needs_selection(plan, shape, other) && sp.selection_slots[other] == sp.selection_slots[s]) {
                fail(INF_STATUS_INVALID_ARGUMENT, "plan->sparse->selection_slots[", s, "] (", sp.selection_slots[s],
                     ") is also the slot of sequence ", other, " in this step");
            }
        }
        if (sp.reselect[s] == 0) {
            check_stored(model, plan, shape, s);
        }
    }
}

// A distributed sparse step: streaming heads (the Λ mask) work on every instance, since positions are absolute;
// page selection takes a global top-k at the home every step; a reusable selection (selection_store) is not
// supported with several instances yet.
void check_distributed_sparse(const PagePool& pool, const inf_step_plan& plan, StepShape& shape) {
    const inf_sparse_step& sp = shape.sparse_step;
    if (sp.budget_tokens <= 0) {
        return;
    }
    std::int32_t selecting = -1;
    for (std::int32_t s = 0; s < plan.sequences && selecting < 0; ++s) {
        selecting = needs_selection(plan, shape, s) ? s : -1;
    }
    std::int32_t served = -1;
    for (std::int32_t i = 0; i < shape.ex.served_parts && served < 0; ++i) {
        served = served_selects(shape, i) ? i : -1;
    }
    shape.global_selection = selecting >= 0 || served >= 0;
    if (!shape.global_selection) {
        return;
    }
    if (sp.selection_store != nullptr) {
        if (selecting >= 0) {
            fail(INF_STATUS_UNSUPPORTED, "plan->sparse->selection_store with plan->exchange: reusable selection with several "
                 "instances is not supported yet (decode sequence ", selecting, " selects pages; pass selection_store = "
                 "null to select every step)");
        }
        fail(INF_STATUS_UNSUPPORTED, "plan->sparse->selection_store with plan->exchange: reusable selection with several "
             "instances is not supported yet (served part ", served, " selects pages; pass selection_store = null to select "
             "every step)");
    }
    if (pool.config().logical_page_size == 0) {
        fail(INF_STATUS_UNSUPPORTED, "plan->sparse->budget_tokens selects pages for served part ", served,
             " but the pool keeps no summaries (its logical_page_size is 0)");
    }
}

// The ring of streaming heads (inf_streaming_ring): its pool holds the streaming heads of every layer and the
// step's pool the retrieval heads; each sequence's ring covers its window this step.
void check_ring(const inf_model_config& model, const PagePool& pool, PagePool& ring_pool, const inf_step_plan& plan,
                StepShape& shape) {
    const inf_sparse_step& sp = shape.sparse_step;
    const inf_streaming_ring ring = api::read_versioned(sp.ring, "plan->sparse->ring", "inf_streaming_ring");
    if (shape.exchange) {
        fail(INF_STATUS_UNSUPPORTED, "plan->sparse->ring with plan->exchange: ring storage of streaming heads is not "
             "supported in a distributed step (pass plan->sparse->ring = null and keep streaming heads in the pool)");
    }
    if (pool.device().kind() != INF_DEVICE_KIND_CPU) {
        fail(INF_STATUS_UNSUPPORTED, "plan->sparse->ring on ", pool.device().label(),
             ": ring storage of streaming heads runs on the CPU only");
    }
    if (!ring_pool.device().same_device(pool.device())) {
        fail(INF_STATUS_DEVICE_MISMATCH, "plan->sparse->ring->pool lives on ", ring_pool.device().label(),
             " but the step's pool on ", pool.device().label());
    }
    if (&ring_pool == &pool) {
        fail(INF_STATUS_INVALID_ARGUMENT, "plan->sparse->ring->pool is the step's pool: the ring needs a pool of its own");
    }
    check_pool(model, ring_pool, "plan->sparse->ring->pool");
    for (std::int32_t l = 0; l < model.layers; ++l) {
        const std::int32_t streaming = count_heads(sp.streaming_heads, model.kv_heads, l, true);
        if (pool.layer_heads(l) != model.kv_heads - streaming) {
            fail(INF_STATUS_INVALID_ARGUMENT, "pool: config->layer_kv_heads[", l, "] (", pool.layer_heads(l),
                 ") must equal the retrieval heads of layer ", l, " (", model.kv_heads - streaming,
                 ", the zero flags of plan->sparse->streaming_heads) when plan->sparse->ring is set");
        }
        if (ring_pool.layer_heads(l) != streaming) {
            fail(INF_STATUS_INVALID_ARGUMENT, "plan->sparse->ring->pool: config->layer_kv_heads[", l, "] (",
                 ring_pool.layer_heads(l), ") must equal the streaming heads of layer ", l, " (", streaming,
                 ", the nonzero flags of plan->sparse->streaming_heads)");
        }
    }
    constexpr const char* kRing = "plan->sparse->ring->";
    api::require_array(ring.ring_starts, kRing, "ring_starts");
    api::check_prefix(ring.ring_starts, plan.sequences, kRing, "ring_starts");
    const std::int32_t entries = ring.ring_starts[plan.sequences];
    if (entries > 0) {
        api::require_array(ring.ring_pages, kRing, "ring_pages");
    }
    const std::int32_t pages = ring_pool.config().pages;
    for (std::int32_t j = 0; j < entries; ++j) {
        if (ring.ring_pages[j] < 0 || ring.ring_pages[j] >= pages) {
            fail(INF_STATUS_OUT_OF_RANGE, "plan->sparse->ring->ring_pages[", j, "] (", ring.ring_pages[j],
                 ") is out of range: the ring pool has ", pages, " pages");
        }
    }
    // Two entries on one page would overwrite each other's keys. The sorted copy lives per thread, so the hot
    // path allocates only when a step has more ring entries than any before it on this thread.
    thread_local std::vector<std::pair<std::int32_t, std::int32_t>> sorted;
    sorted.clear();
    for (std::int32_t j = 0; j < entries; ++j) {
        sorted.emplace_back(ring.ring_pages[j], j);
    }
    std::sort(sorted.begin(), sorted.end());
    for (std::size_t i = 1; i < sorted.size(); ++i) {
        if (sorted[i].first == sorted[i - 1].first) {
            fail(INF_STATUS_INVALID_ARGUMENT, "plan->sparse->ring->ring_pages[", sorted[i].second, "] (", sorted[i].first,
                 ") repeats plan->sparse->ring->ring_pages[", sorted[i - 1].second,
                 "]: every ring entry of the step needs a page of its own");
        }
    }
    const std::int32_t page_size = ring_pool.config().page_size;
    const std::int32_t sink_pages =
        ring_sink_pages(std::max(sp.decode_sink_tokens, sp.prefill_sink_tokens), page_size);
    for (std::int32_t s = 0; s < plan.sequences; ++s) {
        const std::int32_t rows = plan.q_starts[s + 1] - plan.q_starts[s];
        const bool decode = rows == 1;
        // Keys from the first row's window to the last row: local + rows - 1 positions.
        const std::int64_t window =
            decode ? sp.decode_local_tokens : std::int64_t{sp.prefill_local_tokens} + rows - 1;
        const std::int64_t needed = ring_window_pages(window, page_size);
        const std::int32_t have = ring.ring_starts[s + 1] - ring.ring_starts[s];
        if (have - sink_pages < needed) {
            fail(INF_STATUS_INVALID_ARGUMENT, "plan->sparse->ring: the ring of sequence ", s, " has ", have,
                 have == 1 ? " page" : " pages", " of ", page_size, " tokens but this step needs ", sink_pages + needed,
                 " (", sink_pages, " for the sink of ", std::max(sp.decode_sink_tokens, sp.prefill_sink_tokens),
                 " tokens + ", needed, " for a window of ", window, " tokens: ",
                 decode ? "decode_local_tokens " : "prefill_local_tokens ",
                 decode ? sp.decode_local_tokens : sp.prefill_local_tokens,
                 decode ? std::string{} : cat(" + a chunk of ", rows, " tokens - 1"), ")");
        }
    }
    shape.ring = true;
    shape.ring_desc = ring;
    shape.ring_pool = &ring_pool;
    shape.ring_sink_pages = sink_pages;
}

}  // namespace

std::int32_t count_heads(const std::int32_t* flags, std::int32_t kv_heads, std::int32_t layer, bool streaming) noexcept {
    if (flags == nullptr) {
        return streaming ? 0 : kv_heads;
    }
    std::int32_t count = 0;
    for (std::int32_t h = 0; h < kv_heads; ++h) {
        count += (flags[std::int64_t{layer} * kv_heads + h] != 0) == streaming ? 1 : 0;
    }
    return count;
}

bool served_selects(const StepShape& shape, std::int32_t i) noexcept {
    return shape.sparse && shape.exchange && shape.sparse_step.budget_tokens > 0 &&
           shape.ex.served_q_starts[i + 1] - shape.ex.served_q_starts[i] == 1 &&
           shape.ex.served_kv_lengths[i] > shape.sparse_step.budget_tokens;
}

bool needs_selection(const inf_step_plan& plan, const StepShape& shape, std::int32_t s) noexcept {
    return shape.sparse && shape.sparse_step.budget_tokens > 0 && is_decode(plan, s) &&
           plan.kv_lengths[s] > shape.sparse_step.budget_tokens;
}

std::int64_t selection_slot_ints(std::int32_t layers, std::int32_t lists_per_sequence, std::int32_t budget_pages) noexcept {
    return std::int64_t{layers} * lists_per_sequence * (1 + std::int64_t{budget_pages});
}

StepShape check_step(const inf_model_config& model, const PagePool& pool, const inf_step_plan& plan, const float* logits,
                     Communicator* comm, PagePool* ring_pool) {
    check_pool(model, pool);
    if (ring_pool == nullptr && pool.per_layer_heads()) {
        fail(INF_STATUS_INVALID_ARGUMENT, "pool stores fewer than kv_heads (", model.kv_heads, ") heads in some layer "
             "(config->layer_kv_heads), which only a step with plan->sparse->ring reads (the retrieval heads' pool)");
    }
    if (plan.sequences < 0) {
        fail(INF_STATUS_INVALID_ARGUMENT, "plan->sequences (", plan.sequences, ") must be >= 0");
    }
    if (plan.tokens < 0) {
        fail(INF_STATUS_INVALID_ARGUMENT, "plan->tokens (", plan.tokens, ") must be >= 0");
    }
    check_tokens(model, plan);
    StepShape shape;
    if (plan.exchange != nullptr) {
        shape.exchange = true;
        shape.ex = api::read_versioned(plan.exchange, "plan->exchange", "inf_step_exchange");
        if (comm == nullptr) {
            fail(INF_STATUS_NULL_POINTER, "plan->exchange->comm is null");
        }
        shape.comm = comm;
        check_exchange(pool, plan, shape);
    }
    check_pages(pool, plan, shape);
    check_logits(plan, logits);
    if (plan.sparse != nullptr) {
        if (!shape.exchange && plan.page_positions != nullptr && !default_positions(plan, pool.config().page_size)) {
            fail(INF_STATUS_UNSUPPORTED, "plan->sparse with plan->page_positions other than the default (entry j at j * "
                 "page_size): sparse lists assume a sequence's entries start at position 0 and follow each other");
        }
        // Set before check_sparse: the stored selections of a ring step are checked by their compacted lists.
        shape.ring = ring_pool != nullptr;
        check_sparse(model, pool, plan, shape);
        if (ring_pool != nullptr) {
            check_ring(model, pool, *ring_pool, plan, shape);
        }
        if (shape.exchange) {
            check_distributed_sparse(pool, plan, shape);
        }
    } else if (ring_pool != nullptr) {
        fail(INF_STATUS_INVALID_ARGUMENT, "a ring pool was given without plan->sparse");
    }
    return shape;
}

}  // namespace inf
