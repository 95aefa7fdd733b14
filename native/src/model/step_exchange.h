// The per-layer exchange of a distributed step (DistAttention across instances, inf_step_exchange).
//
// In every layer, after Q/K/V, RoPE and the local append, an instance:
//  1. (home) sends each peer that holds remote parts of its sequences ONE query message: the parts' query
//     rows, and their K and V rows where the peer stores some of this step's tokens;
//  2. runs the local attention of its own sequences (LlamaModel);
//  3. (creditor) receives each home's query message, appends the K/V rows it stores, runs ONE
//     MicroAttention over every part it serves and sends each home ONE reply with its parts' (o, lse);
//  4. (home) receives each creditor's reply and merges it into its own rows (exact log-sum-exp merge).
// Sends never wait, so this order completes on every instance whatever the order of arrival.
//
// Wire format (host byte order; all instances run the same build): int32 header {magic, kind, step_id low,
// step_id high, layer, parts, rows, q_width, kv_width, q_heads}, then per part {rows, sends_kv,
// first_position, kv_length}, then float32 payload. Query: per part q [rows][q_width], then, when sends_kv,
// k and v [rows][kv_width]. Reply: o [rows][q_width] of all parts, then lse [rows][q_heads]. The receiver
// checks every field against its own plan: a message of an older step_id is left over from a failed step
// and dropped; anything else that disagrees is INF_STATUS_PEER_FAILED naming the rank and the field.
//
// Sparse steps (plan.sparse): served attention applies the step's Λ mask to the streaming heads of the layer,
// with the decode windows for a part of one row and the prefill windows for a longer one, exactly as the
// home chooses them for its own rows (positions are absolute, so a served part's keys are masked as on one
// instance). Page selection is refused with an exchange (check_step), so the messages are the dense ones.
//
// Page selection (plan.sparse with budget_tokens, a decode whose kv_length exceeds it; selection_store must be
// null: a global top-k every step). Each instance scores its own entries of the sequence with the query (the
// selector's scores, score_entries). Per layer, after the query message: a creditor receives its queries early,
// scores its entries of the selecting parts and sends each home ONE scores message (tag kExchangeScoresTag,
// kind 4: per selecting part {rows 1, entries, first_position, kv_length}, then per part its entries'
// positions (int32) and scores [lists][entries]); the home receives them, keeps the global top budget_pages
// entries of each list exactly as one instance's selector would (the entry of the newest key forced in, then
// higher score first, NaN as -inf, ties to the lower position) and sends each creditor ONE selection message
// (tag kExchangeSelectionTag, kind 5: the same descriptors, then int32 flags [lists][entries], 1 = read it);
// then every instance attends over its chosen entries only and the (o, lse) reply and merge follow. Sends
// still never wait and every wait is on a message sent in an earlier phase, so no order deadlocks. Every
// field is checked on receipt (PEER_FAILED naming the rank and the field), positions too (page-aligned,
// ascending, below kv_length, held by one instance only).
//
// Abort: an instance whose step fails once the exchange began (a lost or silent peer, a protocol error, a
// local error) would leave the peers that wait on it waiting out their whole timeout, since it is alive but
// sends nothing more. So it sends, best effort, one abort message (kind 3, parts 0, rows = length of the
// reason in bytes, then the reason's bytes padded to whole floats) on the query tag to each rank that serves
// its parts and on the reply tag to each rank whose parts it serves: exactly the (rank, tag) pairs those
// peers may be waiting on. A receiver that finds an abort of its step fails at once with PEER_FAILED
// "rank N aborted step S: <reason>" ("rank", never "peer N": the aborting rank is alive; the reason keeps
// the original text, which names the truly lost "peer K") and, failing, aborts to its own peers in turn, so
// the abort spreads along chains of waits, once per instance. An abort of an older step is stale: dropped.
#pragma once

#include <cstdint>
#include <vector>

#include "comm/communicator.h"
#include "core/device.h"
#include "infinite/infinite.h"
#include "kv/page_pool.h"
#include "model/step_checks.h"
#include "model/step_profile.h"
#include "model/step_workspace.h"

namespace inf {

inline constexpr std::int32_t kExchangeQueryTag = kReservedTagBase + 0;
inline constexpr std::int32_t kExchangeReplyTag = kReservedTagBase + 1;
inline constexpr std::int32_t kExchangeScoresTag = kReservedTagBase + 2;     // creditor -> home: page scores
inline constexpr std::int32_t kExchangeSelectionTag = kReservedTagBase + 3;  // home -> creditor: chosen pages

// The score of every entry of each sequence of params (page-select params without outputs or workspace), as
// the backend's selector ranks them (logical pages maxed per physical page, per KV head lists maxed over the
// group's query heads; NaN may appear and ranks as -inf; a skipped head's lists are -inf). scores: per
// sequence i, [lists][entries of i], sequence after sequence. The CPU selector leaves its score rows at the
// start of its workspace ([sequence * kv_heads + head][group][widest]); this reads them from there, so the
// scores are bit for bit the ones a single-instance selection compares.
void score_entries(const Device& device, inf_page_select_params params, std::vector<float>& scratch,
                   std::vector<std::int32_t>& starts, std::vector<std::int32_t>& indices, std::vector<float>& scores);

class StepExchange {
public:
    // shape comes from check_step with an exchange; plan, pool and the buffers outlive this object.
    StepExchange(const inf_model_config& config, const Device& device, PagePool& pool, const inf_step_plan& plan,
                 const StepShape& shape, ExchangeWorkspace& ws, std::vector<float>& attention_scratch,
                 StepProfile& profile);

    // 1: q [tokens][q_width], k and v [tokens][kv_width] of this layer (post-RoPE).
    void send_queries(std::int32_t layer, const float* q, const float* k, const float* v);
    // 3: laps the timer as "exchange" (waiting, replying) and "serve" (appends, attention).
    void serve(std::int32_t layer, StepProfile::Timer& timer);
    // 3a (a global selection calls it before the home's selection; serve calls it otherwise): receives the
    // homes' queries and appends their K/V rows. 3b (creditor): scores its pages of the selecting parts and
    // sends each home its scores.
    void receive_queries(std::int32_t layer, StepProfile::Timer& timer);
    void send_scores(std::int32_t layer);
    // Home: the global selection of its selecting sequences (sequences[i], compacted local entries
    // page_starts / page_positions, local scores from score_entries): receives the creditors' scores, keeps
    // the global top budget_pages per list (the newest key's entry always, ties to the lower position: the
    // single-instance order), writes the local choice to starts ([n * lists + 1]) / indices (ascending local
    // entry indices) and sends each creditor its choice.
    void select(std::int32_t layer, const std::vector<std::int32_t>& sequences, const std::int32_t* page_starts,
                const std::int32_t* page_positions, const float* local_scores, std::vector<std::int32_t>& starts,
                std::vector<std::int32_t>& indices);
    // 4: attn [tokens][q_width] and lse [tokens][q_heads] hold the local results and get the merged ones.
    void merge_replies(std::int32_t layer, float* attn, float* lse);
    // The step failed in layer with reason (the exception's text): tells the peers (see "Abort" above).
    // Never throws: a peer that is gone or unreachable simply misses it.
    void abort(std::int32_t layer, const char* reason) noexcept;

private:
    // Receives the next message of this step from (peer, tag) into ws_.inbox, dropping older steps'
    // messages, and checks its header against kind, layer and parts; returns its length in floats.
    std::size_t receive(std::int32_t peer, std::int32_t tag, std::int32_t kind, std::int32_t layer, std::int32_t parts);
    // Checks part p's descriptor in ws_.inbox against what this instance expects.
    void check_part(std::int32_t peer, std::int32_t kind, std::int32_t layer, std::int32_t p, const std::int32_t expected[4]) const;
    // Writes the header and returns where the descriptors start.
    float* begin_message(std::size_t floats, std::int32_t kind, std::int32_t layer, std::int32_t parts, std::int32_t rows);
    float* write_header(float* message, std::int32_t kind, std::int32_t layer, std::int32_t parts, std::int32_t rows) const;
    void send(std::int32_t peer, std::int32_t tag, std::size_t floats, std::int32_t layer, const char* what);
    void append_rows(std::int32_t layer, std::int32_t part, const float* k, const float* v);
    // Creditor: receives each home's choice for its selecting parts (ws_.sel_starts / sel_indices).
    void receive_selection(std::int32_t layer);
    bool skipped_head(std::int32_t layer, std::int32_t kv_head) const noexcept;
    // A sparse step: splits the served parts into decode parts and prefill chunks (constructor).
    void split_served();
    // Attention over the served parts of group (a split_served group) with the Λ mask of the layer.
    void attend_served(std::int32_t layer, AttentionGroup& group, const std::int32_t* streaming);
    // Throws PEER_FAILED "rank <peer> aborted step S: <reason>" for the abort message of bytes in ws_.inbox.
    [[noreturn]] void throw_aborted(std::int32_t peer, std::uint64_t bytes) const;

    const inf_model_config& config_;
    const Device& device_;
    PagePool& pool_;
    const inf_step_plan& plan_;
    const StepShape& shape_;
    const inf_step_exchange& ex_;
    Communicator& comm_;
    ExchangeWorkspace& ws_;
    std::vector<float>& attention_scratch_;
    StepProfile& profile_;
    std::int64_t q_width_;
    std::int64_t kv_width_;
    bool queries_received_ = false;  // this layer's queries are in (receive_queries ran)
};

}  // namespace inf
