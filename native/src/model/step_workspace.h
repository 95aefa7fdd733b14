// Activations and index arrays of one step on the CPU. A model keeps a free list of these (see
// LlamaModel): a step leases one, so concurrent steps never share one, and arrays only grow, so a step no
// bigger than an earlier one allocates nothing.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace inf {

// Makes v hold at least n elements without ever shrinking it; returns its data.
template <class T>
T* grow(std::vector<T>& v, std::int64_t n) {
    if (v.size() < static_cast<std::size_t>(n)) {
        v.resize(static_cast<std::size_t>(n));
    }
    return v.data();
}

// The sequences of one attention call: all of the step's (the plan's arrays are used as they are) or a
// subset (decode rows or prefill chunks of a sparse step), whose arrays are compacted here.
struct AttentionGroup {
    bool all = false;
    bool decode = false;
    std::vector<std::int32_t> sequences;  // step sequence of each group sequence
    std::vector<std::int32_t> rows;       // step token of each group row
    std::vector<std::int32_t> q_starts, positions, kv_lengths, page_starts, page_ids, page_positions;
    std::vector<float> q, o, lse;  // gathered rows (subset groups only)
    std::int32_t max_q = 0;
    std::int32_t widest = 0;  // most entries of one sequence

    // Compacts the rows, positions, kv lengths and page entries of `sequences` out of a batch given as prefix
    // arrays (a step plan's own sequences, or the parts an instance serves), and sets max_q and widest.
    void gather(const std::int32_t* batch_q_starts, const std::int32_t* batch_positions,
                const std::int32_t* batch_kv_lengths, const std::int32_t* batch_page_starts,
                const std::int32_t* batch_page_ids, const std::int32_t* batch_page_positions) {
        q_starts.assign(1, 0);
        page_starts.assign(1, 0);
        rows.clear();
        positions.clear();
        kv_lengths.clear();
        page_ids.clear();
        page_positions.clear();
        max_q = 0;
        widest = 0;
        for (const std::int32_t s : sequences) {
            for (std::int32_t r = batch_q_starts[s]; r < batch_q_starts[s + 1]; ++r) {
                rows.push_back(r);
                positions.push_back(batch_positions[r]);
            }
            q_starts.push_back(static_cast<std::int32_t>(rows.size()));
            kv_lengths.push_back(batch_kv_lengths[s]);
            for (std::int32_t j = batch_page_starts[s]; j < batch_page_starts[s + 1]; ++j) {
                page_ids.push_back(batch_page_ids[j]);
                page_positions.push_back(batch_page_positions[j]);
            }
            page_starts.push_back(static_cast<std::int32_t>(page_ids.size()));
            max_q = std::max(max_q, batch_q_starts[s + 1] - batch_q_starts[s]);
            widest = std::max(widest, batch_page_starts[s + 1] - batch_page_starts[s]);
        }
    }
};

// Buffers of a distributed step's exchange (model/step_exchange.h).
struct ExchangeWorkspace {
    std::vector<std::int32_t> remote_groups;  // (rank, first part, end part) per peer the home sends to
    std::vector<std::int32_t> served_groups;  // (rank, first part, end part) per home this instance serves
    std::vector<std::int32_t> served_slots;   // [served rows]: position % page_size
    std::vector<float> outbox;                // the message being packed
    std::vector<float> inbox;                 // the message last received
    std::vector<float> serve_q, serve_o, serve_lse;
    // A sparse step with streaming heads: the served parts split like the home's sequences (decode parts, then
    // prefill parts), since the two use different Λ windows; and the decode parts' per-head lists.
    AttentionGroup served_split[2];
    std::vector<std::int32_t> head_starts, head_indices;
    // Global page selection (model/step_exchange.h, "Page selection"). Creditor: its selecting served parts
    // compacted for the selector, their scores, and the home's choice as lists of the parts' entries.
    std::vector<std::int32_t> sel_of_part, sel_parts, sel_q_rows, sel_kv_lengths, sel_page_starts, sel_page_ids,
        sel_page_positions, sel_starts, sel_indices, sel_out_starts, sel_out_indices;
    std::vector<float> sel_scores, sel_scratch;
    // Home: per remote part, where its scores sit in remote_payload (-1: it does not select) and its entries;
    // the flags chosen for it ([lists][entries] at flag_offset); the candidates of one sequence.
    std::vector<std::int32_t> remote_offset, remote_entries, flag_offset, flags, order;
    std::vector<float> remote_payload;
    struct Candidate {
        std::int32_t position;
        std::int32_t owner;  // -1: this instance, else the remote part
        std::int32_t index;  // entry index in the owner's list of the sequence
    };
    std::vector<Candidate> candidates;
    std::vector<float> keys;
};

// A ring step's per-layer split of heads (model/ring_attention.cpp): the KV heads of each role, the K, V, q,
// o and lse rows of each role compacted, each token's ring page and slot, the ring entries attended.
struct RingWorkspace {
    std::vector<std::int32_t> retrieval, streaming;  // KV heads of the layer by role, ascending
    std::vector<std::int32_t> q_map;                 // the query heads of one role
    std::vector<float> k_ret, v_ret, k_str, v_str, q_ret, q_str, o_ret, o_str, lse_ret, lse_str;
    std::vector<std::int32_t> pages, slots, ones;
    std::vector<std::int32_t> q_starts, positions, kv_lengths, page_starts, page_ids, page_positions, rows;
    std::vector<float> q, o, lse;  // a subset group's gathered rows
};

struct StepWorkspace {
    std::vector<float> x, xn, q, k, v, attn, lse, gate, up, rope_cos, rope_sin, head_rows;
    std::vector<std::int32_t> pages, slots, page_positions;
    // (first token, count) of each run of tokens stored in this pool (a distributed step or page_positions:
    // tokens stored by a peer have page -1 and are skipped).
    std::vector<std::int32_t> append_runs;
    ExchangeWorkspace exchange;
    RingWorkspace ring;
    AttentionGroup groups[2];
    std::vector<std::int32_t> head_starts, head_indices;
    // Fresh page selection of this step: the sequences, their compacted tables, the kernel's output.
    std::vector<std::int32_t> select_sequences, select_of_sequence, select_q_rows, select_kv_lengths, select_page_starts,
        select_page_ids, select_page_positions, select_starts, select_indices;
    std::vector<float> attention_scratch, select_scratch, select_scores;
};

}  // namespace inf
