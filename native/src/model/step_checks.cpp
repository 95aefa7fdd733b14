#include "model/step_checks.h"

#include <algorithm>

#include "api/batch_checks.h"
#include "api/checks.h"
#include "core/status.h"

namespace inf {

namespace {

constexpr const char* kPlan = "plan->";
constexpr const char* kSparse = "plan->sparse->";

void check_pool(const inf_model_config& model, const PagePool& pool) {
    const inf_page_pool_config& p = pool.config();
    if (p.layers != model.layers || p.kv_heads != model.kv_heads || p.head_dim != model.head_dim) {
        fail(INF_STATUS_INVALID_ARGUMENT, "pool has layers ", p.layers, ", kv_heads ", p.kv_heads, ", head_dim ",
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
    api::require_array(plan.kv_lengths, kPlan, "kv_lengths");
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

void check_pages(const PagePool& pool, const inf_step_plan& plan) {
    const std::int32_t page_size = pool.config().page_size;
    api::require_array(plan.page_starts, kPlan, "page_starts");
    api::check_prefix(plan.page_starts, plan.sequences, kPlan, "page_starts");
    for (std::int32_t s = 0; s < plan.sequences; ++s) {
        const std::int64_t count = std::int64_t{plan.page_starts[s + 1]} - plan.page_starts[s];
        if (count * page_size < plan.kv_lengths[s]) {
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
        if (sp.streaming_heads != nullptr && sp.streaming_heads[layer * model.kv_heads + kv_head] != 0) {
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
    const inf_sparse_step sp = api::read_versioned(plan.sparse, "plan->sparse", "inf_sparse_step");
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

}  // namespace

bool needs_selection(const inf_step_plan& plan, const StepShape& shape, std::int32_t s) noexcept {
    return shape.sparse && shape.sparse_step.budget_tokens > 0 && is_decode(plan, s) &&
           plan.kv_lengths[s] > shape.sparse_step.budget_tokens;
}

std::int64_t selection_slot_ints(std::int32_t layers, std::int32_t lists_per_sequence, std::int32_t budget_pages) noexcept {
    return std::int64_t{layers} * lists_per_sequence * (1 + std::int64_t{budget_pages});
}

StepShape check_step(const inf_model_config& model, const PagePool& pool, const inf_step_plan& plan, const float* logits) {
    check_pool(model, pool);
    if (plan.sequences < 0) {
        fail(INF_STATUS_INVALID_ARGUMENT, "plan->sequences (", plan.sequences, ") must be >= 0");
    }
    if (plan.tokens < 0) {
        fail(INF_STATUS_INVALID_ARGUMENT, "plan->tokens (", plan.tokens, ") must be >= 0");
    }
    check_tokens(model, plan);
    check_pages(pool, plan);
    check_logits(plan, logits);
    StepShape shape;
    if (plan.sparse != nullptr) {
        check_sparse(model, pool, plan, shape);
    }
    return shape;
}

}  // namespace inf
