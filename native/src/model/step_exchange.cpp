#include "model/step_exchange.h"

#include <cmath>
#include <cstring>
#include <exception>
#include <limits>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/log.h"
#include "core/status.h"
#include "model/exchange_checks.h"
#include "model/model_config.h"
#include "model/step_workspace.h"

namespace inf {

namespace {

constexpr std::int32_t kMagic = 0x48435849;  // "IXCH"
constexpr std::int32_t kQuery = 1;
constexpr std::int32_t kReply = 2;
constexpr std::int32_t kAbort = 3;  // the sender gave the step up; rows holds the length of its reason
constexpr std::size_t kHeaderInts = 10;
constexpr std::size_t kRowsField = 6;  // header index of the message's rows
constexpr std::size_t kPartInts = 4;  // rows, sends_kv, first_position, kv_length
// Abort reasons nest as the abort spreads ("rank 2 aborted step 9: rank 0 aborted step 9: ..."); this keeps
// them small whatever the depth, while the head and the tail (where the original cause is) survive.
constexpr std::size_t kMaxReason = 4096;
constexpr std::size_t kReasonHead = 1024;

const char* kind_name(std::int32_t kind) { return kind == kQuery ? "query" : "reply"; }

// "a query", "a reply" or "an abort": what a message of this step header is, for the log and errors.
const char* a_kind(std::int32_t header_kind, std::int32_t expected) {
    return header_kind == kAbort ? "an abort" : expected == kQuery ? "a query" : "a reply";
}

std::string clip_reason(const char* reason) {
    std::string text = reason != nullptr ? reason : "";
    if (text.size() <= kMaxReason) {
        return text;
    }
    static constexpr const char kCut[] = " [...] ";
    const std::size_t tail = kMaxReason - kReasonHead - (sizeof kCut - 1);
    return text.substr(0, kReasonHead) + kCut + text.substr(text.size() - tail);
}

// (rank, first part, end part) for each run of equal ranks.
void group_by_rank(const std::int32_t* ranks, std::int32_t parts, std::vector<std::int32_t>& groups) {
    groups.clear();
    for (std::int32_t i = 0; i < parts; ++i) {
        if (i == 0 || ranks[i] != ranks[i - 1]) {
            if (i > 0) groups.push_back(i);
            groups.push_back(ranks[i]);
            groups.push_back(i);
        }
    }
    if (parts > 0) groups.push_back(parts);
}

// Merges the partial (o2, lse2) of one query row into (o, lse): s = log(e^s1 + e^s2),
// o = e^(s1-s) o1 + e^(s2-s) o2; both -inf gives o = 0, lse = -inf.
void merge_row(float* o, float* lse, const float* o2, const float* lse2, std::int32_t heads, std::int32_t head_dim) {
    for (std::int32_t h = 0; h < heads; ++h) {
        const float s1 = lse[h];
        const float s2 = lse2[h];
        const float top = std::max(s1, s2);
        float* out = o + std::int64_t{h} * head_dim;
        if (top == -std::numeric_limits<float>::infinity()) {
            std::fill(out, out + head_dim, 0.0F);
            lse[h] = top;
            continue;
        }
        const float w1 = std::exp(s1 - top);
        const float w2 = std::exp(s2 - top);
        const float sum = w1 + w2;
        const float a = w1 / sum;
        const float b = w2 / sum;
        const float* other = o2 + std::int64_t{h} * head_dim;
        for (std::int32_t d = 0; d < head_dim; ++d) {
            out[d] = a * out[d] + b * other[d];
        }
        lse[h] = top + std::log(sum);
    }
}

// Adds "step S, layer L, <what>: " in front of a communicator's error, keeping its status.
[[noreturn]] void rethrow(const Error& error, std::int64_t step, std::int32_t layer, const char* what, std::int32_t peer) {
    throw Error(error.status(), cat("step exchange (step_id ", step, ", layer ", layer, ", ", what, " rank ", peer, "): ",
                                    error.what()));
}

}  // namespace

StepExchange::StepExchange(const inf_model_config& config, const Device& device, PagePool& pool,
                           const inf_step_plan& plan, const StepShape& shape, ExchangeWorkspace& ws,
                           std::vector<float>& attention_scratch, StepProfile& profile)
    : config_(config),
      device_(device),
      pool_(pool),
      plan_(plan),
      shape_(shape),
      ex_(shape.ex),
      comm_(*shape.comm),
      ws_(ws),
      attention_scratch_(attention_scratch),
      profile_(profile),
      q_width_(q_width(config)),
      kv_width_(kv_width(config)) {
    group_by_rank(ex_.remote_ranks, ex_.remote_parts, ws_.remote_groups);
    group_by_rank(ex_.served_ranks, ex_.served_parts, ws_.served_groups);
    const std::int32_t page_size = pool.config().page_size;
    std::int32_t* slots = grow(ws_.served_slots, shape.served_rows);
    for (std::int32_t r = 0; r < shape.served_rows; ++r) {
        slots[r] = ex_.served_positions[r] % page_size;
    }
    grow(ws_.serve_q, std::int64_t{shape.served_rows} * q_width_);
    grow(ws_.serve_o, std::int64_t{shape.served_rows} * q_width_);
    grow(ws_.serve_lse, std::int64_t{shape.served_rows} * config.q_heads);
}

float* StepExchange::begin_message(std::size_t floats, std::int32_t kind, std::int32_t layer, std::int32_t parts,
                                   std::int32_t rows) {
    return write_header(grow(ws_.outbox, static_cast<std::int64_t>(floats)), kind, layer, parts, rows);
}

float* StepExchange::write_header(float* message, std::int32_t kind, std::int32_t layer, std::int32_t parts,
                                  std::int32_t rows) const {
    const auto step = static_cast<std::uint64_t>(ex_.step_id);
    const std::int32_t header[kHeaderInts] = {kMagic,
                                              kind,
                                              static_cast<std::int32_t>(step & 0xFFFFFFFFU),
                                              static_cast<std::int32_t>(step >> 32U),
                                              layer,
                                              parts,
                                              rows,
                                              static_cast<std::int32_t>(q_width_),
                                              static_cast<std::int32_t>(kv_width_),
                                              config_.q_heads};
    std::memcpy(message, header, sizeof header);
    return message + kHeaderInts;
}

void StepExchange::send(std::int32_t peer, std::int32_t tag, std::size_t floats, std::int32_t layer, const char* what) {
    const std::uint64_t bytes = floats * sizeof(float);
    try {
        comm_.send(peer, tag, ws_.outbox.data(), bytes);
    } catch (const Error& error) {
        rethrow(error, ex_.step_id, layer, what, peer);
    }
    profile_.count_exchange(bytes, 0);
}

void StepExchange::send_queries(std::int32_t layer, const float* q, const float* k, const float* v) {
    const std::vector<std::int32_t>& groups = ws_.remote_groups;
    for (std::size_t g = 0; g < groups.size(); g += 3) {
        const std::int32_t rank = groups[g];
        const std::int32_t first = groups[g + 1];
        const std::int32_t end = groups[g + 2];
        std::size_t floats = kHeaderInts + kPartInts * static_cast<std::size_t>(end - first);
        std::int32_t rows = 0;
        for (std::int32_t i = first; i < end; ++i) {
            const std::int32_t s = ex_.remote_sequences[i];
            const std::int32_t n = plan_.q_starts[s + 1] - plan_.q_starts[s];
            rows += n;
            floats += static_cast<std::size_t>(n) * static_cast<std::size_t>(q_width_ + (part_sends_kv(ex_, i) ? 2 * kv_width_ : 0));
        }
        float* out = begin_message(floats, kQuery, layer, end - first, rows);
        float* payload = out + kPartInts * static_cast<std::size_t>(end - first);
        for (std::int32_t i = first; i < end; ++i) {
            const std::int32_t s = ex_.remote_sequences[i];
            const std::int32_t t0 = plan_.q_starts[s];
            const std::int32_t n = plan_.q_starts[s + 1] - t0;
            const bool kv = part_sends_kv(ex_, i);
            const std::int32_t part[kPartInts] = {n, kv ? 1 : 0, plan_.positions[t0], plan_.kv_lengths[s]};
            std::memcpy(out + kPartInts * static_cast<std::size_t>(i - first), part, sizeof part);
            const auto q_count = static_cast<std::size_t>(n * q_width_);
            std::memcpy(payload, q + t0 * q_width_, q_count * sizeof(float));
            payload += q_count;
            if (kv) {
                const auto kv_count = static_cast<std::size_t>(n * kv_width_);
                std::memcpy(payload, k + t0 * kv_width_, kv_count * sizeof(float));
                std::memcpy(payload + kv_count, v + t0 * kv_width_, kv_count * sizeof(float));
                payload += 2 * kv_count;
            }
        }
        send(rank, kExchangeQueryTag, floats, layer, "sending queries to");
    }
}

std::size_t StepExchange::receive(std::int32_t peer, std::int32_t tag, std::int32_t kind, std::int32_t layer,
                                  std::int32_t parts) {
    const char* what = kind == kQuery ? "waiting for queries from" : "waiting for the reply of";
    for (;;) {
        std::uint64_t bytes = 0;
        try {
            const std::uint64_t length = comm_.probe(peer, tag);
            grow(ws_.inbox, static_cast<std::int64_t>(length / sizeof(float) + 1));
            bytes = comm_.recv(peer, tag, ws_.inbox.data(), ws_.inbox.size() * sizeof(float));
        } catch (const Error& error) {
            if (error.status() == INF_STATUS_OUT_OF_RANGE) {
                continue;  // a longer message came first (probe raced); size the inbox again
            }
            rethrow(error, ex_.step_id, layer, what, peer);
        }
        profile_.count_exchange(0, bytes);
        std::int32_t h[kHeaderInts] = {};
        if (bytes >= sizeof h) {
            std::memcpy(h, ws_.inbox.data(), sizeof h);
        }
        if (bytes < sizeof h || bytes % sizeof(float) != 0 || h[0] != kMagic) {
            fail(INF_STATUS_PEER_FAILED, "step exchange: rank ", peer, " sent a message of ", bytes, " bytes with tag ", tag,
                 " that is not a step-exchange ", kind_name(kind));
        }
        const auto step = static_cast<std::int64_t>(static_cast<std::uint64_t>(static_cast<std::uint32_t>(h[2])) |
                                                    (static_cast<std::uint64_t>(static_cast<std::uint32_t>(h[3])) << 32U));
        if (step < ex_.step_id) {
            // Left over from a step that failed before this one: nobody waits for it any more.
            log(INF_LOG_LEVEL_DEBUG, "step exchange: dropped ", a_kind(h[1], kind), " of step_id ", step, " (layer ", h[4],
                ") from rank ", peer, " while running step_id ", ex_.step_id);
            continue;
        }
        if (step > ex_.step_id) {
            fail(INF_STATUS_PEER_FAILED, "step exchange: rank ", peer, " sent ", a_kind(h[1], kind), " of step_id ", step,
                 " while this instance runs step_id ", ex_.step_id, " (every instance must run the same step)");
        }
        if (h[1] == kAbort) {
            throw_aborted(peer, bytes);
        }
        const std::int32_t expected[kHeaderInts] = {
            kMagic, kind, h[2], h[3], layer, parts, h[6], static_cast<std::int32_t>(q_width_), static_cast<std::int32_t>(kv_width_),
            config_.q_heads};
        static constexpr const char* kFields[kHeaderInts] = {"magic", "kind", "step", "step", "layer", "parts",
                                                               "rows", "q_width", "kv_width", "q_heads"};
        for (std::size_t i = 0; i < kHeaderInts; ++i) {
            if (h[i] != expected[i]) {
                fail(INF_STATUS_PEER_FAILED, "step exchange (step_id ", ex_.step_id, ", layer ", layer, "): the ",
                     kind_name(kind), " from rank ", peer, " has ", kFields[i], " ", h[i], " but this instance expects ",
                     expected[i]);
            }
        }
        if (bytes < (kHeaderInts + kPartInts * static_cast<std::size_t>(parts)) * sizeof(float)) {
            fail(INF_STATUS_PEER_FAILED, "step exchange: the ", kind_name(kind), " from rank ", peer, " is truncated (",
                 bytes, " bytes)");
        }
        return static_cast<std::size_t>(bytes / sizeof(float));
    }
}

void StepExchange::check_part(std::int32_t peer, std::int32_t kind, std::int32_t layer, std::int32_t p,
                              const std::int32_t expected[4]) const {
    std::int32_t part[kPartInts] = {};
    std::memcpy(part, ws_.inbox.data() + kHeaderInts + kPartInts * static_cast<std::size_t>(p), sizeof part);
    static constexpr const char* kFields[kPartInts] = {"rows", "sends_kv", "first position", "kv_length"};
    for (std::size_t i = 0; i < kPartInts; ++i) {
        if (part[i] != expected[i]) {
            fail(INF_STATUS_PEER_FAILED, "step exchange (step_id ", ex_.step_id, ", layer ", layer, "): part ", p, " of the ",
                 kind_name(kind), " from rank ", peer, " has ", kFields[i], " ", part[i], " but this instance's plan says ",
                 expected[i], " (the plans of the two instances disagree)");
        }
    }
}

void StepExchange::append_rows(std::int32_t layer, std::int32_t part, const float* k, const float* v) {
    // Rows stored here form runs (the part's pages cover ranges of positions); one append per run.
    const std::int32_t first = ex_.served_q_starts[part];
    const std::int32_t end = ex_.served_q_starts[part + 1];
    std::int32_t r = first;
    while (r < end) {
        if (ex_.served_append_pages[r] < 0) {
            ++r;
            continue;
        }
        std::int32_t run_end = r;
        while (run_end < end && ex_.served_append_pages[run_end] >= 0) {
            ++run_end;
        }
        const std::int64_t offset = std::int64_t{r - first} * kv_width_;
        pool_.append(layer, run_end - r, ex_.served_append_pages + r, ws_.served_slots.data() + r, k + offset, v + offset);
        r = run_end;
    }
}

void StepExchange::serve(std::int32_t layer, StepProfile::Timer& timer) {
    const std::vector<std::int32_t>& groups = ws_.served_groups;
    if (groups.empty()) {
        return;
    }
    for (std::size_t g = 0; g < groups.size(); g += 3) {
        const std::int32_t rank = groups[g];
        const std::int32_t first = groups[g + 1];
        const std::int32_t end = groups[g + 2];
        std::size_t floats = kHeaderInts + kPartInts * static_cast<std::size_t>(end - first);
        for (std::int32_t i = first; i < end; ++i) {
            const bool kv = part_receives_kv(ex_, i);
            floats += static_cast<std::size_t>(ex_.served_q_starts[i + 1] - ex_.served_q_starts[i]) *
                      static_cast<std::size_t>(q_width_ + (kv ? 2 * kv_width_ : 0));
        }
        const std::size_t got = receive(rank, kExchangeQueryTag, kQuery, layer, end - first);
        timer.lap(StepPhase::exchange);
        for (std::int32_t i = first; i < end; ++i) {  // the descriptors first: they name what disagrees
            const std::int32_t r0 = ex_.served_q_starts[i];
            const std::int32_t expected[kPartInts] = {ex_.served_q_starts[i + 1] - r0, part_receives_kv(ex_, i) ? 1 : 0,
                                                      ex_.served_positions[r0], ex_.served_kv_lengths[i]};
            check_part(rank, kQuery, layer, i - first, expected);
        }
        std::int32_t rows_header = 0;
        std::memcpy(&rows_header, ws_.inbox.data() + kRowsField, sizeof rows_header);
        const std::int32_t rows = ex_.served_q_starts[end] - ex_.served_q_starts[first];
        if (rows_header != rows || got != floats) {
            fail(INF_STATUS_PEER_FAILED, "step exchange (step_id ", ex_.step_id, ", layer ", layer, "): the query from rank ", rank,
                 " has ", rows_header, " rows in ", got, " floats but this instance serves ", rows, " rows (", floats, " floats)");
        }
        const float* payload = ws_.inbox.data() + kHeaderInts + kPartInts * static_cast<std::size_t>(end - first);
        for (std::int32_t i = first; i < end; ++i) {
            const std::int32_t r0 = ex_.served_q_starts[i];
            const std::int32_t n = ex_.served_q_starts[i + 1] - r0;
            const bool kv = part_receives_kv(ex_, i);
            const auto q_count = static_cast<std::size_t>(n * q_width_);
            std::memcpy(ws_.serve_q.data() + r0 * q_width_, payload, q_count * sizeof(float));
            payload += q_count;
            if (kv) {
                const auto kv_count = static_cast<std::size_t>(n * kv_width_);
                append_rows(layer, i, payload, payload + kv_count);
                payload += 2 * kv_count;
            }
        }
        timer.lap(StepPhase::serve);
    }

    inf_attention_params params{};
    params.layer = pool_.kv_layer(layer);
    params.sequences = ex_.served_parts;
    params.q_heads = config_.q_heads;
    params.total_q = shape_.served_rows;
    params.max_q = shape_.served_max_q;
    params.max_entries = shape_.served_widest;
    params.scale = 1.0F / std::sqrt(static_cast<float>(config_.head_dim));
    params.q_dtype = INF_DTYPE_F32;
    params.q = ws_.serve_q.data();
    params.o = ws_.serve_o.data();
    params.lse = ws_.serve_lse.data();
    params.q_starts = ex_.served_q_starts;
    params.q_positions = ex_.served_positions;
    params.kv_lengths = ex_.served_kv_lengths;
    params.page_starts = ex_.served_page_starts;
    params.page_ids = ex_.served_page_ids;
    params.page_positions = ex_.served_page_positions;
    Backend& backend = device_.backend();
    const std::uint64_t scratch = backend.attention_workspace_bytes(device_.ordinal(), params);
    params.workspace = scratch == 0 ? nullptr : grow(attention_scratch_, static_cast<std::int64_t>(scratch / sizeof(float) + 1));
    params.workspace_bytes = scratch;
    backend.attention(device_.ordinal(), params);
    timer.lap(StepPhase::serve);

    for (std::size_t g = 0; g < groups.size(); g += 3) {
        const std::int32_t rank = groups[g];
        const std::int32_t first = groups[g + 1];
        const std::int32_t end = groups[g + 2];
        const std::int32_t r0 = ex_.served_q_starts[first];
        const std::int32_t rows = ex_.served_q_starts[end] - r0;
        const std::size_t floats = kHeaderInts + kPartInts * static_cast<std::size_t>(end - first) +
                                   static_cast<std::size_t>(rows) * static_cast<std::size_t>(q_width_ + config_.q_heads);
        float* out = begin_message(floats, kReply, layer, end - first, rows);
        for (std::int32_t i = first; i < end; ++i) {
            const std::int32_t p0 = ex_.served_q_starts[i];
            const bool kv = part_receives_kv(ex_, i);
            const std::int32_t part[kPartInts] = {ex_.served_q_starts[i + 1] - p0, kv ? 1 : 0, ex_.served_positions[p0],
                                                  ex_.served_kv_lengths[i]};
            std::memcpy(out + kPartInts * static_cast<std::size_t>(i - first), part, sizeof part);
        }
        float* payload = out + kPartInts * static_cast<std::size_t>(end - first);
        std::memcpy(payload, ws_.serve_o.data() + std::int64_t{r0} * q_width_,
                    static_cast<std::size_t>(rows * q_width_) * sizeof(float));
        std::memcpy(payload + rows * q_width_, ws_.serve_lse.data() + std::int64_t{r0} * config_.q_heads,
                    static_cast<std::size_t>(rows) * static_cast<std::size_t>(config_.q_heads) * sizeof(float));
        send(rank, kExchangeReplyTag, floats, layer, "replying to");
    }
    timer.lap(StepPhase::exchange);
}

void StepExchange::merge_replies(std::int32_t layer, float* attn, float* lse) {
    const std::vector<std::int32_t>& groups = ws_.remote_groups;
    const std::int32_t heads = config_.q_heads;
    for (std::size_t g = 0; g < groups.size(); g += 3) {
        const std::int32_t rank = groups[g];
        const std::int32_t first = groups[g + 1];
        const std::int32_t end = groups[g + 2];
        std::int32_t rows = 0;
        for (std::int32_t i = first; i < end; ++i) {
            const std::int32_t s = ex_.remote_sequences[i];
            rows += plan_.q_starts[s + 1] - plan_.q_starts[s];
        }
        const std::size_t floats = kHeaderInts + kPartInts * static_cast<std::size_t>(end - first) +
                                   static_cast<std::size_t>(rows) * static_cast<std::size_t>(q_width_ + heads);
        const std::size_t got = receive(rank, kExchangeReplyTag, kReply, layer, end - first);
        for (std::int32_t i = first; i < end; ++i) {
            const std::int32_t s = ex_.remote_sequences[i];
            const std::int32_t t0 = plan_.q_starts[s];
            const std::int32_t expected[kPartInts] = {plan_.q_starts[s + 1] - t0, part_sends_kv(ex_, i) ? 1 : 0,
                                                      plan_.positions[t0], plan_.kv_lengths[s]};
            check_part(rank, kReply, layer, i - first, expected);
        }
        if (got != floats) {
            fail(INF_STATUS_PEER_FAILED, "step exchange (step_id ", ex_.step_id, ", layer ", layer, "): the reply from rank ", rank,
                 " has ", got, " floats but this instance expects ", floats, " (", rows, " rows)");
        }
        const float* o = ws_.inbox.data() + kHeaderInts + kPartInts * static_cast<std::size_t>(end - first);
        const float* part_lse = o + std::int64_t{rows} * q_width_;
        for (std::int32_t i = first; i < end; ++i) {
            const std::int32_t s = ex_.remote_sequences[i];
            const std::int32_t t0 = plan_.q_starts[s];
            const std::int32_t n = plan_.q_starts[s + 1] - t0;
            for (std::int32_t t = t0; t < t0 + n; ++t) {
                merge_row(attn + std::int64_t{t} * q_width_, lse + std::int64_t{t} * heads, o, part_lse, heads, config_.head_dim);
                o += q_width_;
                part_lse += heads;
            }
        }
    }
}

void StepExchange::throw_aborted(std::int32_t peer, std::uint64_t bytes) const {
    std::int32_t length = 0;
    std::memcpy(&length, ws_.inbox.data() + kRowsField, sizeof length);
    const std::uint64_t room = bytes - kHeaderInts * sizeof(float);  // receive checked bytes >= the header
    std::string reason;
    if (length < 0 || static_cast<std::uint64_t>(length) > room) {
        reason = cat("(a malformed abort message: a reason of ", length, " bytes in ", room, ")");
    } else {
        reason.assign(reinterpret_cast<const char*>(ws_.inbox.data() + kHeaderInts), static_cast<std::size_t>(length));
        for (char& c : reason) {  // the text ends up in a C string and in logs: no NULs or control bytes
            if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') {
                c = '?';
            }
        }
    }
    // "rank", not "peer": callers read "peer N" as "instance N is lost", and the aborting rank is alive.
    fail(INF_STATUS_PEER_FAILED, "rank ", peer, " aborted step ", ex_.step_id, ": ", reason);
}

void StepExchange::abort(std::int32_t layer, const char* reason) noexcept {
    try {
        const std::string text = clip_reason(reason);
        const std::size_t floats = kHeaderInts + (text.size() + sizeof(float) - 1) / sizeof(float);
        std::vector<float> message(floats, 0.0F);  // its own buffer: the outbox may hold a half-built message
        write_header(message.data(), kAbort, layer, 0, static_cast<std::int32_t>(text.size()));
        std::memcpy(message.data() + kHeaderInts, text.data(), text.size());
        // The (rank, tag) pairs peers may wait on: the servers of this instance's parts wait for its queries,
        // the homes of the parts it serves wait for its replies. A rank listed in several runs is told once.
        const auto tell = [&](const std::vector<std::int32_t>& groups, std::int32_t tag) {
            for (std::size_t g = 0; g < groups.size(); g += 3) {
                bool told = false;
                for (std::size_t e = 0; e < g; e += 3) {
                    told = told || groups[e] == groups[g];
                }
                if (told) {
                    continue;
                }
                try {
                    comm_.send(groups[g], tag, message.data(), floats * sizeof(float));
                } catch (const std::exception& error) {  // gone or unreachable: it has nothing to wait for
                    log(INF_LOG_LEVEL_DEBUG, "step exchange: could not tell rank ", groups[g], " that step_id ",
                        ex_.step_id, " is aborted: ", error.what());
                }
            }
        };
        tell(ws_.remote_groups, kExchangeQueryTag);
        tell(ws_.served_groups, kExchangeReplyTag);
    } catch (...) {
        // Out of memory building the message: the peers fall back to their timeouts.
    }
}

}  // namespace inf
