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
};

}  // namespace inf
