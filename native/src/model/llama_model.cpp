#include "model/llama_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <mutex>
#include <optional>

#include "core/status.h"
#include "model/blas.h"
#include "model/cpu_model_kernels.h"
#include "model/model_config.h"
#include "model/rope.h"
#include "model/sparse_lists.h"
#include "model/step_exchange.h"

namespace inf {

namespace {

// y[rows][out] = x[rows][in] * w^T (w is [out][in]) + beta * y.
void linear(const float* x, std::int64_t rows, std::int64_t in, const float* w, std::int64_t out, float* y,
            float beta = 0.0F) {
    blas::linear(x, rows, in, w, out, y, beta);
}

// Copies the rows listed in rows from src (row width width) to dst, or back with scatter.
void gather_rows(const float* src, const std::vector<std::int32_t>& rows, std::int64_t width, float* dst) {
    for (std::size_t r = 0; r < rows.size(); ++r) {
        std::memcpy(dst + static_cast<std::int64_t>(r) * width, src + std::int64_t{rows[r]} * width,
                    static_cast<std::size_t>(width) * sizeof(float));
    }
}

void scatter_rows(const float* src, const std::vector<std::int32_t>& rows, std::int64_t width, float* dst) {
    for (std::size_t r = 0; r < rows.size(); ++r) {
        std::memcpy(dst + std::int64_t{rows[r]} * width, src + static_cast<std::int64_t>(r) * width,
                    static_cast<std::size_t>(width) * sizeof(float));
    }
}

// Page and slot of every token from its sequence's table, whose entry j starts at page_positions[j] (given,
// or the default filled in here); a token that no entry covers (stored by a peer: checked) gets page -1.
// Appends the (first token, count) runs of tokens stored here to runs.
void locate_tokens(const inf_step_plan& plan, std::int32_t page_size, std::int32_t* pages, std::int32_t* slots,
                   std::int32_t* default_positions, std::vector<std::int32_t>& runs) {
    runs.clear();
    for (std::int32_t s = 0; s < plan.sequences; ++s) {
        const std::int32_t begin = plan.page_starts[s];
        const std::int32_t end = plan.page_starts[s + 1];
        const std::int32_t* positions = plan.page_positions != nullptr ? plan.page_positions + begin : nullptr;
        if (positions == nullptr) {
            for (std::int32_t j = begin; j < end; ++j) {
                default_positions[j] = (j - begin) * page_size;
            }
            positions = default_positions + begin;
        }
        std::int32_t j = 0;
        for (std::int32_t t = plan.q_starts[s]; t < plan.q_starts[s + 1]; ++t) {
            const std::int64_t p = plan.positions[t];
            while (begin + j < end && std::int64_t{positions[j]} + page_size <= p) {
                ++j;
            }
            const bool local = begin + j < end && positions[j] <= p;
            pages[t] = local ? plan.page_ids[begin + j] : -1;
            slots[t] = static_cast<std::int32_t>(p % page_size);
            if (!local) {
                continue;
            }
            if (!runs.empty() && runs[runs.size() - 2] + runs.back() == t) {
                ++runs.back();
            } else {
                runs.push_back(t);
                runs.push_back(1);
            }
        }
    }
}

}  // namespace

// Takes a workspace from the model's free list for one step.
struct LlamaModel::Lease {
    const LlamaModel& model;
    std::unique_ptr<StepWorkspace> workspace;

    explicit Lease(const LlamaModel& owner) : model(owner) {
        std::lock_guard lock(model.workspace_mutex_);
        if (!model.free_workspaces_.empty()) {
            workspace = std::move(model.free_workspaces_.back());
            model.free_workspaces_.pop_back();
        }
        if (!workspace) {
            workspace = std::make_unique<StepWorkspace>();
        }
    }
    ~Lease() {
        std::lock_guard lock(model.workspace_mutex_);
        model.free_workspaces_.push_back(std::move(workspace));
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
};

LlamaModel::LlamaModel(std::shared_ptr<Device> device, const inf_model_config& config, const inf_tensor* tensors,
                       std::int32_t tensor_count, inf_progress_callback progress, void* user_data)
    : device_(std::move(device)),
      config_(config),
      weights_(config, tensors, tensor_count, progress, user_data),
      inv_freq_(rope_inv_freq(config)) {}

void LlamaModel::prepare_groups(StepWorkspace& ws, const PagePool& /*pool*/, const inf_step_plan& plan,
                                const StepShape& shape) const {
    // The entries' positions (filled in by step before this call when the plan gives none).
    const std::int32_t* positions = plan.page_positions != nullptr ? plan.page_positions : ws.page_positions.data();
    for (AttentionGroup& group : ws.groups) {
        group.sequences.clear();
    }
    // Dense steps make one group; sparse steps split decode rows (group 0) from prefill chunks (group 1).
    for (std::int32_t s = 0; s < plan.sequences; ++s) {
        const bool decode = is_decode(plan, s);
        ws.groups[shape.sparse && !decode ? 1 : 0].sequences.push_back(s);
    }
    for (int g = 0; g < 2; ++g) {
        AttentionGroup& group = ws.groups[g];
        group.decode = shape.sparse && g == 0;
        group.all = static_cast<std::int32_t>(group.sequences.size()) == plan.sequences;
        group.max_q = 0;
        group.widest = 0;
        for (const std::int32_t s : group.sequences) {
            group.max_q = std::max(group.max_q, plan.q_starts[s + 1] - plan.q_starts[s]);
            group.widest = std::max(group.widest, plan.page_starts[s + 1] - plan.page_starts[s]);
        }
        if (group.all || group.sequences.empty()) {
            continue;
        }
        group.gather(plan.q_starts, plan.positions, plan.kv_lengths, plan.page_starts, plan.page_ids, positions);
    }
}

void LlamaModel::prepare_selection(StepWorkspace& ws, std::int32_t page_size, const inf_step_plan& plan,
                                   const StepShape& shape) const {
    ws.select_sequences.clear();
    ws.select_of_sequence.assign(static_cast<std::size_t>(plan.sequences), -1);
    // A distributed step's entries are anywhere in the sequence: their real positions (a single instance's
    // sparse plan has the default ones, check_step).
    const std::int32_t* positions =
        !shape.exchange ? nullptr : plan.page_positions != nullptr ? plan.page_positions : ws.page_positions.data();
    const inf_sparse_step& sp = shape.sparse_step;
    ws.select_q_rows.clear();
    ws.select_kv_lengths.clear();
    ws.select_page_starts.assign(1, 0);
    ws.select_page_ids.clear();
    ws.select_page_positions.clear();
    for (std::int32_t s = 0; s < plan.sequences; ++s) {
        const bool reuse = sp.selection_store != nullptr && sp.reselect[s] == 0;
        if (!needs_selection(plan, shape, s) || reuse) {
            continue;
        }
        ws.select_of_sequence[static_cast<std::size_t>(s)] = static_cast<std::int32_t>(ws.select_sequences.size());
        ws.select_sequences.push_back(s);
        ws.select_q_rows.push_back(plan.q_starts[s]);
        ws.select_kv_lengths.push_back(plan.kv_lengths[s]);
        for (std::int32_t j = plan.page_starts[s]; j < plan.page_starts[s + 1]; ++j) {
            ws.select_page_ids.push_back(plan.page_ids[j]);
            ws.select_page_positions.push_back(positions != nullptr ? positions[j] : (j - plan.page_starts[s]) * page_size);
        }
        ws.select_page_starts.push_back(static_cast<std::int32_t>(ws.select_page_ids.size()));
    }
}

void LlamaModel::select_pages(StepWorkspace& ws, const PagePool& pool, std::int32_t layer, const StepShape& shape,
                              StepExchange* exchange, const HeadView& view) const {
    const auto count = static_cast<std::int32_t>(ws.select_sequences.size());
    if (count == 0) {
        return;
    }
    // The view's lists per sequence (a ring step: its retrieval heads'); the store keeps the model's layout.
    const std::int32_t view_lists = shape.sparse_step.per_query_head != 0 ? view.q_heads : view.kv_heads;
    const std::int64_t lists = std::int64_t{count} * view_lists;
    inf_page_select_params params{};
    params.layer = pool.kv_layer(layer);
    params.sequences = count;
    params.q_heads = view.q_heads;
    params.q_dtype = INF_DTYPE_F32;
    params.budget_pages = shape.budget_pages;
    params.per_query_head = shape.sparse_step.per_query_head;
    params.q = view.q;
    params.q_rows = ws.select_q_rows.data();
    params.kv_lengths = ws.select_kv_lengths.data();
    params.page_starts = ws.select_page_starts.data();
    params.page_ids = ws.select_page_ids.data();
    params.page_positions = ws.select_page_positions.data();
    // Streaming heads never read a selection: the selector skips them (half the summaries at LServe's 0.5).
    params.skip_kv_heads = view.streaming;
    if (exchange != nullptr) {
        // A distributed step: the global top-k over every instance's scores (StepExchange::select).
        score_entries(*device_, params, ws.select_scratch, ws.select_starts, ws.select_indices, ws.select_scores);
        exchange->select(layer, ws.select_sequences, ws.select_page_starts.data(), ws.select_page_positions.data(),
                         ws.select_scores.data(), ws.select_starts, ws.select_indices);
        return;
    }
    params.head_page_starts = grow(ws.select_starts, lists + 1);
    params.head_page_indices = grow(ws.select_indices, lists * shape.budget_pages);
    Backend& backend = device_->backend();
    const std::uint64_t scratch = backend.page_select_workspace_bytes(device_->ordinal(), params);
    params.workspace = grow(ws.select_scratch, static_cast<std::int64_t>(scratch / sizeof(float) + 1));
    params.workspace_bytes = scratch;
    backend.page_select(device_->ordinal(), params);
    const inf_sparse_step& sp = shape.sparse_step;
    if (sp.selection_store == nullptr) {
        return;
    }
    const std::int64_t stride = 1 + shape.budget_pages;
    for (std::int32_t i = 0; i < count; ++i) {
        const std::int32_t s = ws.select_sequences[static_cast<std::size_t>(i)];
        std::int32_t* slot = sp.selection_store + std::int64_t{sp.selection_slots[s]} * sp.slot_ints +
                             std::int64_t{layer} * shape.lists_per_sequence * stride;
        for (std::int32_t list = 0; list < view_lists; ++list) {
            const std::int64_t k = std::int64_t{i} * view_lists + list;
            const std::int32_t first = ws.select_starts[static_cast<std::size_t>(k)];
            const std::int32_t end = ws.select_starts[static_cast<std::size_t>(k) + 1];
            std::int32_t* out = slot + list * stride;
            out[0] = end - first;
            std::copy(ws.select_indices.begin() + first, ws.select_indices.begin() + end, out + 1);
        }
    }
}

void LlamaModel::attend(StepWorkspace& ws, AttentionGroup& group, const PagePool& pool, std::int32_t layer,
                        const inf_step_plan& plan, const StepShape& shape, const HeadView& view) const {
    if (group.sequences.empty()) {
        return;
    }
    const std::int64_t qw = std::int64_t{view.q_heads} * config_.head_dim;
    const std::int32_t kv_heads = view.kv_heads;
    inf_attention_params params{};
    params.layer = pool.kv_layer(layer);
    params.sequences = static_cast<std::int32_t>(group.sequences.size());
    params.q_heads = view.q_heads;
    params.max_q = group.max_q;
    params.max_entries = group.widest;
    params.scale = 1.0F / std::sqrt(static_cast<float>(config_.head_dim));
    params.q_dtype = INF_DTYPE_F32;
    if (group.all) {
        params.total_q = plan.tokens;
        params.q = view.q;
        params.o = view.o;
        params.lse = view.lse;
        params.q_starts = plan.q_starts;
        params.q_positions = plan.positions;
        params.kv_lengths = plan.kv_lengths;
        params.page_starts = plan.page_starts;
        params.page_ids = plan.page_ids;
        params.page_positions = plan.page_positions != nullptr ? plan.page_positions : ws.page_positions.data();
    } else {
        const auto rows = static_cast<std::int64_t>(group.rows.size());
        gather_rows(view.q, group.rows, qw, grow(group.q, rows * qw));
        params.total_q = static_cast<std::int32_t>(rows);
        params.q = group.q.data();
        params.o = grow(group.o, rows * qw);
        params.lse = grow(group.lse, rows * view.q_heads);
        params.q_starts = group.q_starts.data();
        params.q_positions = group.positions.data();
        params.kv_lengths = group.kv_lengths.data();
        params.page_starts = group.page_starts.data();
        params.page_ids = group.page_ids.data();
        params.page_positions = group.page_positions.data();
    }

    const inf_sparse_step& sp = shape.sparse_step;
    const std::int32_t* streaming = view.streaming;
    if (streaming != nullptr && std::none_of(streaming, streaming + kv_heads, [](std::int32_t f) { return f != 0; })) {
        streaming = nullptr;
    }
    const std::int32_t sink = group.decode ? sp.decode_sink_tokens : sp.prefill_sink_tokens;
    const std::int32_t local = group.decode ? sp.decode_local_tokens : sp.prefill_local_tokens;
    params.streaming_heads = streaming;
    params.sink_tokens = streaming != nullptr ? sink : 0;
    params.local_tokens = streaming != nullptr ? local : 0;

    // Decode rows of a sparse step read per-head lists when a head is streaming or a sequence selects.
    bool any_selection = false;
    for (const std::int32_t s : group.sequences) {
        any_selection = any_selection || needs_selection(plan, shape, s);
    }
    if (group.decode && (streaming != nullptr || any_selection)) {
        const std::int32_t per_kv = sp.per_query_head != 0 && any_selection ? view.q_heads / kv_heads : 1;
        const std::int32_t view_lists = sp.per_query_head != 0 ? view.q_heads : kv_heads;  // a fresh selection's
        ws.head_starts.assign(1, 0);
        ws.head_indices.clear();
        std::int32_t longest = 0;
        const std::int64_t stride = 1 + std::int64_t{shape.budget_pages};
        for (std::size_t i = 0; i < group.sequences.size(); ++i) {
            const std::int32_t s = group.sequences[i];
            SequenceLists in;
            in.kv_length = plan.kv_lengths[s];
            in.page_size = pool.config().page_size;
            in.lists = kv_heads * per_kv;
            in.lists_per_kv_head = per_kv;
            in.streaming = streaming;
            in.sink_tokens = sink;
            in.local_tokens = local;
            if (shape.exchange) {
                // A distributed step's entries are the pages held here, anywhere in the sequence: pick them by
                // position; a selecting sequence's retrieval heads read this instance's share of the global
                // selection (StepExchange::select).
                const std::int32_t begin = group.all ? plan.page_starts[s] : group.page_starts[i];
                const std::int32_t end = group.all ? plan.page_starts[s + 1] : group.page_starts[i + 1];
                in.by_position = true;
                in.positions = params.page_positions + begin;
                in.entries = end - begin;
                const std::int32_t fresh = ws.select_of_sequence[static_cast<std::size_t>(s)];
                if (needs_selection(plan, shape, s) && fresh >= 0) {
                    in.selected = ws.select_indices.data();
                    in.selected_starts = ws.select_starts.data() + std::int64_t{fresh} * view_lists;
                }
            } else if (needs_selection(plan, shape, s)) {
                const std::int32_t fresh = ws.select_of_sequence[static_cast<std::size_t>(s)];
                if (fresh >= 0) {
                    in.selected = ws.select_indices.data();
                    in.selected_starts = ws.select_starts.data() + std::int64_t{fresh} * view_lists;
                } else {
                    in.selected = sp.selection_store + std::int64_t{sp.selection_slots[s]} * sp.slot_ints +
                                  std::int64_t{layer} * shape.lists_per_sequence * stride;
                    in.selected_stride = stride;
                }
            }
            longest = std::max(longest, append_sequence_lists(in, ws.head_starts, ws.head_indices));
        }
        params.head_page_starts = ws.head_starts.data();
        params.head_page_indices = ws.head_indices.data();
        params.head_lists_per_query_head = per_kv > 1 || (sp.per_query_head != 0 && any_selection) ? 1 : 0;
        params.max_entries = longest;
    }

    Backend& backend = device_->backend();
    const std::uint64_t scratch = backend.attention_workspace_bytes(device_->ordinal(), params);
    params.workspace = scratch == 0 ? nullptr : grow(ws.attention_scratch, static_cast<std::int64_t>(scratch / sizeof(float) + 1));
    params.workspace_bytes = scratch;
    backend.attention(device_->ordinal(), params);
    if (!group.all) {
        scatter_rows(group.o.data(), group.rows, qw, view.o);
    }
}

void LlamaModel::step(PagePool& pool, const inf_step_plan& plan, const StepShape& shape, float* logits) const {
    // An instance with no tokens of its own still runs the layers when it serves peers' parts.
    const bool serves = shape.exchange && shape.ex.served_parts > 0;
    if (plan.tokens == 0 && !serves) {
        return;
    }
    StepProfile::Timer timer(profile_);
    profile_.count_step();
    Lease lease(*this);
    StepWorkspace& ws = *lease.workspace;
    const inf_model_config& c = config_;
    const std::int64_t tokens = plan.tokens;
    const bool own = tokens > 0;
    const std::int64_t dim = c.dim;
    const std::int64_t qw = q_width(c);
    const std::int64_t kw = kv_width(c);
    const std::int64_t ffn = c.ffn_dim;
    const std::int32_t page_size = pool.config().page_size;

    float* x = grow(ws.x, tokens * dim);
    float* xn = grow(ws.xn, tokens * dim);
    float* q = grow(ws.q, tokens * qw);
    float* k = grow(ws.k, tokens * kw);
    float* v = grow(ws.v, tokens * kw);
    float* attn = grow(ws.attn, tokens * qw);
    float* lse = grow(ws.lse, tokens * c.q_heads);
    float* gate = grow(ws.gate, tokens * ffn);
    float* up = grow(ws.up, tokens * ffn);
    float* cos_table = grow(ws.rope_cos, tokens * c.head_dim / 2);
    float* sin_table = grow(ws.rope_sin, tokens * c.head_dim / 2);
    std::int32_t* pages = grow(ws.pages, tokens);
    std::int32_t* slots = grow(ws.slots, tokens);
    std::int32_t* page_positions = grow(ws.page_positions, plan.page_starts[plan.sequences]);

    // One instance with default positions (the common case) keeps its plain path: every token is local.
    const bool located = plan.page_positions != nullptr || shape.exchange;
    if (located) {
        locate_tokens(plan, page_size, pages, slots, page_positions, ws.append_runs);
    } else {
        for (std::int32_t s = 0; s < plan.sequences; ++s) {
            for (std::int32_t t = plan.q_starts[s]; t < plan.q_starts[s + 1]; ++t) {
                pages[t] = plan.page_ids[plan.page_starts[s] + plan.positions[t] / page_size];
                slots[t] = plan.positions[t] % page_size;
            }
            for (std::int32_t j = plan.page_starts[s]; j < plan.page_starts[s + 1]; ++j) {
                page_positions[j] = (j - plan.page_starts[s]) * page_size;
            }
        }
    }
    const float* embedding = weights_.token_embedding();
    for (std::int64_t t = 0; t < tokens; ++t) {
        std::memcpy(x + t * dim, embedding + std::int64_t{plan.token_ids[t]} * dim, static_cast<std::size_t>(dim) * sizeof(float));
    }
    if (own) {
        rope_tables(inv_freq_, plan.positions, plan.tokens, cos_table, sin_table);
    }
    prepare_groups(ws, pool, plan, shape);
    if (shape.sparse) {
        prepare_selection(ws, page_size, plan, shape);
    }
    std::optional<StepExchange> exchange;
    if (shape.exchange) {
        exchange.emplace(c, *device_, pool, plan, shape, ws.exchange, ws.attention_scratch, profile_);
    }
    const auto style = static_cast<inf_rope_style>(raw_enum(c.rope_style));
    timer.lap(StepPhase::embed);

    // Once the exchange began, peers wait on this instance's messages: a failure here (a lost or silent peer,
    // a protocol error, a local error) tells them at once (StepExchange::abort) instead of leaving them to
    // wait out their timeouts.
    std::int32_t l = 0;
    try {
        for (; l < c.layers; ++l) {
            const LayerWeights& w = weights_.layer(l);
            if (own) {
                cpu::rms_norm(x, w.attn_norm, c.norm_eps, tokens, dim, xn);
                timer.lap(StepPhase::norm);
                linear(xn, tokens, dim, w.wq, qw, q);
                linear(xn, tokens, dim, w.wk, kw, k);
                linear(xn, tokens, dim, w.wv, kw, v);
                timer.lap(StepPhase::qkv);
                rope_apply(q, plan.tokens, c.q_heads, c.head_dim, style, cos_table, sin_table);
                rope_apply(k, plan.tokens, c.kv_heads, c.head_dim, style, cos_table, sin_table);
                timer.lap(StepPhase::rope);
                if (shape.ring) {
                    // Appends and attention of both head roles (model/ring_attention.cpp).
                } else if (!located) {
                    pool.append(l, plan.tokens, pages, slots, k, v);
                } else {
                    for (std::size_t r = 0; r < ws.append_runs.size(); r += 2) {
                        const std::int32_t first = ws.append_runs[r];
                        pool.append(l, ws.append_runs[r + 1], pages + first, slots + first, k + first * kw,
                                    v + first * kw);
                    }
                }
                timer.lap(StepPhase::append);
            }
            if (exchange) {
                exchange->send_queries(l, q, k, v);
                timer.lap(StepPhase::exchange);
                if (shape.global_selection) {
                    // The homes' selection waits for this instance's scores: queries in first, scores out.
                    exchange->receive_queries(l, timer);
                    exchange->send_scores(l);
                    timer.lap(StepPhase::select);
                }
            }
            if (own && shape.ring) {
                attend_ring(ws, pool, l, plan, shape);
                timer.lap(StepPhase::attention);
            } else if (own) {
                HeadView view{c.q_heads, c.kv_heads, q, attn, lse, nullptr};
                if (shape.sparse && shape.sparse_step.streaming_heads != nullptr) {
                    view.streaming = shape.sparse_step.streaming_heads + std::int64_t{l} * c.kv_heads;
                }
                if (shape.sparse) {
                    select_pages(ws, pool, l, shape, exchange ? &*exchange : nullptr, view);
                    timer.lap(StepPhase::select);
                }
                for (AttentionGroup& group : ws.groups) {
                    attend(ws, group, pool, l, plan, shape, view);
                }
                timer.lap(StepPhase::attention);
            }
            if (exchange) {
                exchange->serve(l, timer);
                exchange->merge_replies(l, attn, lse);
                timer.lap(StepPhase::exchange);
            }
            if (!own) {
                continue;
            }
            linear(attn, tokens, qw, w.wo, dim, x, 1.0F);  // beta 1: the residual add
            timer.lap(StepPhase::output);
            cpu::rms_norm(x, w.ffn_norm, c.norm_eps, tokens, dim, xn);
            timer.lap(StepPhase::norm);
            linear(xn, tokens, dim, w.gate, ffn, gate);
            linear(xn, tokens, dim, w.up, ffn, up);
            cpu::silu_mul(gate, up, tokens * ffn);
            linear(gate, tokens, ffn, w.down, dim, x, 1.0F);
            timer.lap(StepPhase::mlp);
        }
    } catch (const std::exception& error) {
        if (exchange) {
            exchange->abort(l, error.what());
        }
        throw;
    } catch (...) {
        if (exchange) {
            exchange->abort(l, "an unknown error");
        }
        throw;
    }

    if (plan.logit_rows == 0) {
        return;
    }
    float* rows = grow(ws.head_rows, std::int64_t{plan.logit_rows} * dim);
    for (std::int32_t r = 0; r < plan.logit_rows; ++r) {
        std::memcpy(rows + std::int64_t{r} * dim, x + std::int64_t{plan.logit_tokens[r]} * dim,
                    static_cast<std::size_t>(dim) * sizeof(float));
    }
    cpu::rms_norm(rows, weights_.output_norm(), c.norm_eps, plan.logit_rows, dim, rows);
    linear(rows, plan.logit_rows, dim, weights_.lm_head(), c.vocab_size, logits);
    timer.lap(StepPhase::head);
}

LlamaModel::~LlamaModel() { profile_.report(); }

}  // namespace inf
