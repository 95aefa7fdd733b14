// One layer of a ring step (inf_streaming_ring): the retrieval heads live in the step's pool (compacted: the
// pool's layer holds only them), the streaming heads in their sequences' rings. Each role gets its K and V rows
// appended to its pool and its own attention call(s): the retrieval heads through attend (dense, or over
// selected pages) with a view of just their query heads; the streaming heads over the ring entries their rows
// can see, with every head Λ-masked. The outputs land back in query-head order in ws.attn / ws.lse.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "model/llama_model.h"
#include "model/streaming_ring.h"

namespace inf {

namespace {

// dst[t][i][*] = src[t][heads[i]][*] for rows of `width` floats per head, `from` heads per token.
void gather_heads(const float* src, std::int64_t tokens, std::int32_t from, const std::vector<std::int32_t>& heads,
                  std::int64_t width, float* dst) {
    const auto count = static_cast<std::int64_t>(heads.size());
    for (std::int64_t t = 0; t < tokens; ++t) {
        for (std::int64_t i = 0; i < count; ++i) {
            std::memcpy(dst + (t * count + i) * width, src + (t * from + heads[static_cast<std::size_t>(i)]) * width,
                        static_cast<std::size_t>(width) * sizeof(float));
        }
    }
}

// The inverse: dst[t][heads[i]][*] = src[t][i][*].
void scatter_heads(const float* src, std::int64_t tokens, std::int32_t to, const std::vector<std::int32_t>& heads,
                   std::int64_t width, float* dst) {
    const auto count = static_cast<std::int64_t>(heads.size());
    for (std::int64_t t = 0; t < tokens; ++t) {
        for (std::int64_t i = 0; i < count; ++i) {
            std::memcpy(dst + (t * to + heads[static_cast<std::size_t>(i)]) * width, src + (t * count + i) * width,
                        static_cast<std::size_t>(width) * sizeof(float));
        }
    }
}

// KV heads -> their query heads (group g of KV head h is query head h * G + g).
void query_heads(const std::vector<std::int32_t>& kv, std::int32_t group, std::vector<std::int32_t>& out) {
    out.clear();
    for (const std::int32_t h : kv) {
        for (std::int32_t g = 0; g < group; ++g) {
            out.push_back(h * group + g);
        }
    }
}

}  // namespace

void LlamaModel::attend_ring(StepWorkspace& ws, PagePool& pool, std::int32_t layer, const inf_step_plan& plan,
                             const StepShape& shape) const {
    const inf_model_config& c = config_;
    const inf_sparse_step& sp = shape.sparse_step;
    const inf_streaming_ring& ring = shape.ring_desc;
    PagePool& ring_pool = *shape.ring_pool;
    RingWorkspace& r = ws.ring;
    const std::int64_t tokens = plan.tokens;
    const std::int64_t dim = c.head_dim;
    const std::int32_t group = c.q_heads / c.kv_heads;

    r.retrieval.clear();
    r.streaming.clear();
    for (std::int32_t h = 0; h < c.kv_heads; ++h) {
        const bool streaming = sp.streaming_heads != nullptr && sp.streaming_heads[std::int64_t{layer} * c.kv_heads + h] != 0;
        (streaming ? r.streaming : r.retrieval).push_back(h);
    }
    const auto retrieval = static_cast<std::int32_t>(r.retrieval.size());
    const auto streaming = static_cast<std::int32_t>(r.streaming.size());
    std::vector<std::int32_t>& q_map = r.q_map;  // query heads of the role at hand

    if (retrieval > 0) {
        // The step's pool holds only this layer's retrieval heads; its table is the plan's (check_ring).
        float* k = grow(r.k_ret, tokens * retrieval * dim);
        float* v = grow(r.v_ret, tokens * retrieval * dim);
        gather_heads(ws.k.data(), tokens, c.kv_heads, r.retrieval, dim, k);
        gather_heads(ws.v.data(), tokens, c.kv_heads, r.retrieval, dim, v);
        pool.append(layer, plan.tokens, ws.pages.data(), ws.slots.data(), k, v);
        query_heads(r.retrieval, group, q_map);
        const std::int32_t q_heads = retrieval * group;
        float* q = grow(r.q_ret, tokens * q_heads * dim);
        gather_heads(ws.q.data(), tokens, c.q_heads, q_map, dim, q);
        const HeadView view{q_heads, retrieval, q, grow(r.o_ret, tokens * q_heads * dim), grow(r.lse_ret, tokens * q_heads),
                            nullptr};
        select_pages(ws, pool, layer, shape, nullptr, view);
        for (AttentionGroup& g : ws.groups) {
            attend(ws, g, pool, layer, plan, shape, view);
        }
        scatter_heads(view.o, tokens, c.q_heads, q_map, dim, ws.attn.data());
        scatter_heads(view.lse, tokens, c.q_heads, q_map, 1, ws.lse.data());
    }
    if (streaming == 0) {
        return;
    }

    // Each token's ring entry: page and slot in the ring pool.
    const std::int32_t page_size = ring_pool.config().page_size;
    std::int32_t* pages = grow(r.pages, tokens);
    std::int32_t* slots = grow(r.slots, tokens);
    for (std::int32_t s = 0; s < plan.sequences; ++s) {
        const std::int32_t first = ring.ring_starts[s];
        const std::int32_t entries = ring.ring_starts[s + 1] - first;
        for (std::int32_t t = plan.q_starts[s]; t < plan.q_starts[s + 1]; ++t) {
            pages[t] = ring.ring_pages[first + ring_entry(plan.positions[t], page_size, shape.ring_sink_pages, entries)];
            slots[t] = plan.positions[t] % page_size;
        }
    }
    float* k = grow(r.k_str, tokens * streaming * dim);
    float* v = grow(r.v_str, tokens * streaming * dim);
    gather_heads(ws.k.data(), tokens, c.kv_heads, r.streaming, dim, k);
    gather_heads(ws.v.data(), tokens, c.kv_heads, r.streaming, dim, v);
    ring_pool.append(layer, plan.tokens, pages, slots, k, v);

    query_heads(r.streaming, group, q_map);
    const std::int32_t q_heads = streaming * group;
    const std::int64_t qw = std::int64_t{q_heads} * dim;
    float* q = grow(r.q_str, tokens * qw);
    gather_heads(ws.q.data(), tokens, c.q_heads, q_map, dim, q);
    float* o = grow(r.o_str, tokens * qw);
    float* lse = grow(r.lse_str, tokens * q_heads);
    r.ones.assign(static_cast<std::size_t>(streaming), 1);

    // One call per group (decode rows and prefill chunks take different Λ windows), over the ring entries
    // each sequence's rows can see.
    std::vector<std::int32_t>& rows = r.rows;
    for (const AttentionGroup& g : ws.groups) {
        if (g.sequences.empty()) {
            continue;
        }
        const std::int32_t local = g.decode ? sp.decode_local_tokens : sp.prefill_local_tokens;
        r.q_starts.assign(1, 0);
        r.page_starts.assign(1, 0);
        r.positions.clear();
        r.kv_lengths.clear();
        r.page_ids.clear();
        r.page_positions.clear();
        rows.clear();
        std::int32_t max_q = 0;
        std::int32_t widest = 0;
        for (const std::int32_t s : g.sequences) {
            for (std::int32_t t = plan.q_starts[s]; t < plan.q_starts[s + 1]; ++t) {
                rows.push_back(t);
                r.positions.push_back(plan.positions[t]);
            }
            r.q_starts.push_back(static_cast<std::int32_t>(rows.size()));
            r.kv_lengths.push_back(plan.kv_lengths[s]);
            RingSequence seq;
            seq.pages = ring.ring_pages + ring.ring_starts[s];
            seq.entries = ring.ring_starts[s + 1] - ring.ring_starts[s];
            seq.page_size = page_size;
            seq.sink_pages = shape.ring_sink_pages;
            seq.kv_length = plan.kv_lengths[s];
            seq.first_query = plan.positions[plan.q_starts[s]];
            seq.local_tokens = local;
            widest = std::max(widest, append_ring_entries(seq, r.page_ids, r.page_positions));
            r.page_starts.push_back(static_cast<std::int32_t>(r.page_ids.size()));
            max_q = std::max(max_q, plan.q_starts[s + 1] - plan.q_starts[s]);
        }
        const auto count = static_cast<std::int64_t>(rows.size());
        inf_attention_params params{};
        params.layer = ring_pool.kv_layer(layer);
        params.sequences = static_cast<std::int32_t>(g.sequences.size());
        params.q_heads = q_heads;
        params.total_q = static_cast<std::int32_t>(count);
        params.max_q = max_q;
        params.max_entries = widest;
        params.scale = 1.0F / std::sqrt(static_cast<float>(c.head_dim));
        params.q_dtype = INF_DTYPE_F32;
        // Rows of a subset group are gathered (the whole batch is used in place).
        const bool all = count == tokens;
        if (all) {
            params.q = q;
            params.o = o;
            params.lse = lse;
        } else {
            float* gq = grow(r.q, count * qw);
            for (std::int64_t i = 0; i < count; ++i) {
                std::memcpy(gq + i * qw, q + std::int64_t{rows[static_cast<std::size_t>(i)]} * qw,
                            static_cast<std::size_t>(qw) * sizeof(float));
            }
            params.q = gq;
            params.o = grow(r.o, count * qw);
            params.lse = grow(r.lse, count * q_heads);
        }
        params.q_starts = r.q_starts.data();
        params.q_positions = r.positions.data();
        params.kv_lengths = r.kv_lengths.data();
        params.page_starts = r.page_starts.data();
        params.page_ids = r.page_ids.data();
        params.page_positions = r.page_positions.data();
        params.streaming_heads = r.ones.data();
        params.sink_tokens = g.decode ? sp.decode_sink_tokens : sp.prefill_sink_tokens;
        params.local_tokens = local;
        Backend& backend = device_->backend();
        const std::uint64_t scratch = backend.attention_workspace_bytes(device_->ordinal(), params);
        params.workspace =
            scratch == 0 ? nullptr : grow(ws.attention_scratch, static_cast<std::int64_t>(scratch / sizeof(float) + 1));
        params.workspace_bytes = scratch;
        backend.attention(device_->ordinal(), params);
        if (!all) {
            for (std::int64_t i = 0; i < count; ++i) {
                const std::int64_t t = rows[static_cast<std::size_t>(i)];
                std::memcpy(o + t * qw, params.o + i * qw, static_cast<std::size_t>(qw) * sizeof(float));
                std::memcpy(lse + t * q_heads, params.lse + i * q_heads, static_cast<std::size_t>(q_heads) * sizeof(float));
            }
        }
    }
    scatter_heads(o, tokens, c.q_heads, q_map, dim, ws.attn.data());
    scatter_heads(lse, tokens, c.q_heads, q_map, 1, ws.lse.data());
}

}  // namespace inf
