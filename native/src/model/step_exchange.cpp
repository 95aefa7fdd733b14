#include "model/step_exchange.h"

#include <algorithm>
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
#include "model/sparse_lists.h"
#include "model/step_workspace.h"

namespace inf {

namespace {

constexpr std::int32_t kMagic = 0x48435849;  // "IXCH"
constexpr std::int32_t kQuery = 1;
constexpr std::int32_t kReply = 2;
constexpr std::int32_t kAbort = 3;  // the sender gave the step up; rows holds the length of its reason
constexpr std::int32_t kScores = 4;     // creditor -> home: its entries' positions and scores (page selection)
constexpr std::int32_t kSelection = 5;  // home -> creditor: flags of the chosen entries
constexpr std::size_t kHeaderInts = 10;
constexpr std::size_t kRowsField = 6;  // header index of the message's rows
constexpr std::size_t kPartInts = 4;  // rows, sends_kv, first_position, kv_length
// Abort reasons nest as the abort spreads ("rank 2 aborted step 9: rank 0 aborted step 9: ..."); this keeps
// them small whatever the depth, while the head and the tail (where the original cause is) survive.
constexpr std::size_t kMaxReason = 4096;
constexpr std::size_t kReasonHead = 1024;

const char* kind_name(std::int32_t kind) {
    return kind == kQuery ? "query" : kind == kReply ? "reply" : kind == kScores ? "scores message" : "selection message";
}

// "a query", "a reply", ... or "an abort": what a message of this step header is, for the log and errors.
const char* a_kind(std::int32_t header_kind, std::int32_t expected) {
    return header_kind == kAbort    ? "an abort"
           : expected == kQuery     ? "a query"
           : expected == kReply     ? "a reply"
           : expected == kScores    ? "a scores message"
                                    : "a selection message";
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
    if (shape.sparse && (shape.sparse_step.streaming_heads != nullptr || shape.global_selection) && ex_.served_parts > 0) {
        split_served();
    }
    if (shape.global_selection) {
        // The selecting served parts, compacted for the selector (queries in serve_q at their served rows).
        ws_.sel_of_part.assign(static_cast<std::size_t>(ex_.served_parts), -1);
        ws_.sel_parts.clear();
        ws_.sel_q_rows.clear();
        ws_.sel_kv_lengths.clear();
        ws_.sel_page_starts.assign(1, 0);
        ws_.sel_page_ids.clear();
        ws_.sel_page_positions.clear();
        for (std::int32_t i = 0; i < ex_.served_parts; ++i) {
            if (!served_selects(shape, i)) {
                continue;
            }
            ws_.sel_of_part[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(ws_.sel_parts.size());
            ws_.sel_parts.push_back(i);
            ws_.sel_q_rows.push_back(ex_.served_q_starts[i]);
            ws_.sel_kv_lengths.push_back(ex_.served_kv_lengths[i]);
            for (std::int32_t j = ex_.served_page_starts[i]; j < ex_.served_page_starts[i + 1]; ++j) {
                ws_.sel_page_ids.push_back(ex_.served_page_ids[j]);
                ws_.sel_page_positions.push_back(ex_.served_page_positions[j]);
            }
            ws_.sel_page_starts.push_back(static_cast<std::int32_t>(ws_.sel_page_ids.size()));
        }
    }
}

void score_entries(const Device& device, inf_page_select_params params, std::vector<float>& scratch,
                   std::vector<std::int32_t>& starts, std::vector<std::int32_t>& indices, std::vector<float>& scores) {
    if (device.kind() != INF_DEVICE_KIND_CPU) {
        fail(INF_STATUS_UNSUPPORTED, "page selection with several instances reads the CPU selector's scores; ", device.label(),
             " has no such path yet");
    }
    const std::int32_t n = params.sequences;
    const std::int32_t kv_heads = params.layer.kv_heads;
    const std::int32_t group = params.q_heads / kv_heads;
    const std::int32_t lists = params.per_query_head != 0 ? params.q_heads : kv_heads;
    std::int32_t widest = 0;
    for (std::int32_t i = 0; i < n; ++i) {
        widest = std::max(widest, params.page_starts[i + 1] - params.page_starts[i]);
    }
    const std::int64_t total = params.page_starts[n];
    float* out = grow(scores, total * lists + 1);
    if (n == 0 || widest == 0) {
        std::fill(out, out + total * lists, -std::numeric_limits<float>::infinity());
        return;
    }
    params.head_page_starts = grow(starts, std::int64_t{n} * lists + 1);
    params.head_page_indices = grow(indices, std::int64_t{n} * lists * std::max(1, params.budget_pages) + 1);
    Backend& backend = device.backend();
    const std::uint64_t bytes = backend.page_select_workspace_bytes(device.ordinal(), params);
    params.workspace = grow(scratch, static_cast<std::int64_t>(bytes / sizeof(float) + 1));
    params.workspace_bytes = bytes;
    backend.page_select(device.ordinal(), params);
    const float* rows = scratch.data();
    for (std::int32_t i = 0; i < n; ++i) {
        const std::int32_t entries = params.page_starts[i + 1] - params.page_starts[i];
        for (std::int32_t list = 0; list < lists; ++list) {
            const std::int32_t head = params.per_query_head != 0 ? list / group : list;
            const std::int32_t g = params.per_query_head != 0 ? list % group : 0;
            const bool skipped = params.skip_kv_heads != nullptr && params.skip_kv_heads[head] != 0;
            if (skipped) {
                std::fill(out, out + entries, -std::numeric_limits<float>::infinity());
            } else {
                // page_select's scores: [sequence * kv_heads + head][entry][group]; per KV head, slot 0
                // holds the group's best.
                const float* row = rows + (std::int64_t{i} * kv_heads + head) * widest * group + g;
                for (std::int32_t e = 0; e < entries; ++e) {
                    out[e] = row[std::int64_t{e} * group];
                }
            }
            out += entries;
        }
    }
}

bool StepExchange::skipped_head(std::int32_t layer, std::int32_t kv_head) const noexcept {
    const std::int32_t* streaming = shape_.sparse_step.streaming_heads;
    return streaming != nullptr && streaming[std::int64_t{layer} * config_.kv_heads + kv_head] != 0;
}

void StepExchange::send_scores(std::int32_t layer) {
    const auto n = static_cast<std::int32_t>(ws_.sel_parts.size());
    if (n == 0) {
        return;
    }
    const std::int32_t lists = shape_.lists_per_sequence;
    inf_page_select_params params{};
    params.layer = pool_.kv_layer(layer);
    params.sequences = n;
    params.q_heads = config_.q_heads;
    params.q_dtype = INF_DTYPE_F32;
    params.budget_pages = shape_.budget_pages;
    params.per_query_head = shape_.sparse_step.per_query_head;
    params.q = ws_.serve_q.data();
    params.q_rows = ws_.sel_q_rows.data();
    params.kv_lengths = ws_.sel_kv_lengths.data();
    params.page_starts = ws_.sel_page_starts.data();
    params.page_ids = ws_.sel_page_ids.data();
    params.page_positions = ws_.sel_page_positions.data();
    if (shape_.sparse_step.streaming_heads != nullptr) {
        params.skip_kv_heads = shape_.sparse_step.streaming_heads + std::int64_t{layer} * config_.kv_heads;
    }
    score_entries(device_, params, ws_.sel_scratch, ws_.sel_out_starts, ws_.sel_out_indices, ws_.sel_scores);
    const std::vector<std::int32_t>& groups = ws_.served_groups;
    for (std::size_t g = 0; g < groups.size(); g += 3) {
        const std::int32_t rank = groups[g];
        std::int32_t parts = 0;
        std::size_t payload = 0;
        for (std::int32_t i = groups[g + 1]; i < groups[g + 2]; ++i) {
            const std::int32_t k = ws_.sel_of_part[static_cast<std::size_t>(i)];
            if (k >= 0) {
                ++parts;
                payload += static_cast<std::size_t>(ws_.sel_page_starts[k + 1] - ws_.sel_page_starts[k]) * (1 + lists);
            }
        }
        if (parts == 0) {
            continue;
        }
        const std::size_t floats = kHeaderInts + kPartInts * static_cast<std::size_t>(parts) + payload;
        float* out = begin_message(floats, kScores, layer, parts, static_cast<std::int32_t>(payload));
        float* data = out + kPartInts * static_cast<std::size_t>(parts);
        std::int32_t d = 0;
        for (std::int32_t i = groups[g + 1]; i < groups[g + 2]; ++i) {
            const std::int32_t k = ws_.sel_of_part[static_cast<std::size_t>(i)];
            if (k < 0) {
                continue;
            }
            const std::int32_t begin = ws_.sel_page_starts[k];
            const std::int32_t entries = ws_.sel_page_starts[k + 1] - begin;
            const std::int32_t part[kPartInts] = {1, entries, ex_.served_positions[ex_.served_q_starts[i]], ex_.served_kv_lengths[i]};
            std::memcpy(out + kPartInts * static_cast<std::size_t>(d++), part, sizeof part);
            std::memcpy(data, ws_.sel_page_positions.data() + begin, static_cast<std::size_t>(entries) * sizeof(std::int32_t));
            data += entries;
            std::memcpy(data, ws_.sel_scores.data() + std::int64_t{begin} * lists,
                        static_cast<std::size_t>(entries) * static_cast<std::size_t>(lists) * sizeof(float));
            data += std::int64_t{entries} * lists;
        }
        send(rank, kExchangeScoresTag, floats, layer, "sending page scores to");
    }
}

void StepExchange::select(std::int32_t layer, const std::vector<std::int32_t>& sequences, const std::int32_t* page_starts,
                          const std::int32_t* page_positions, const float* local_scores, std::vector<std::int32_t>& starts,
                          std::vector<std::int32_t>& indices) {
    const std::int32_t lists = shape_.lists_per_sequence;
    const std::int32_t page_size = pool_.config().page_size;
    const std::int32_t group_size = config_.q_heads / config_.kv_heads;
    const bool per_q = shape_.sparse_step.per_query_head != 0;
    const std::vector<std::int32_t>& groups = ws_.remote_groups;
    // 1. The creditors' scores, copied out of the inbox per remote part.
    ws_.remote_offset.assign(static_cast<std::size_t>(ex_.remote_parts), -1);
    ws_.remote_entries.assign(static_cast<std::size_t>(ex_.remote_parts), 0);
    ws_.remote_payload.clear();
    for (std::size_t g = 0; g < groups.size(); g += 3) {
        const std::int32_t rank = groups[g];
        std::int32_t parts = 0;
        for (std::int32_t i = groups[g + 1]; i < groups[g + 2]; ++i) {
            parts += needs_selection(plan_, shape_, ex_.remote_sequences[i]) ? 1 : 0;
        }
        if (parts == 0) {
            continue;
        }
        const std::size_t got = receive(rank, kExchangeScoresTag, kScores, layer, parts);
        const std::int32_t* desc = reinterpret_cast<const std::int32_t*>(ws_.inbox.data() + kHeaderInts);
        std::size_t expected = kHeaderInts + kPartInts * static_cast<std::size_t>(parts);
        std::int32_t d = 0;
        for (std::int32_t i = groups[g + 1]; i < groups[g + 2]; ++i) {
            const std::int32_t s = ex_.remote_sequences[i];
            if (!needs_selection(plan_, shape_, s)) {
                continue;
            }
            std::int32_t part[kPartInts] = {};
            std::memcpy(part, desc + kPartInts * static_cast<std::size_t>(d), sizeof part);
            if (part[1] < 0) {
                fail(INF_STATUS_PEER_FAILED, "step exchange (step_id ", ex_.step_id, ", layer ", layer, "): part ", d,
                     " of the scores message from rank ", rank, " has entries ", part[1], " (must be >= 0)");
            }
            const std::int32_t want[kPartInts] = {1, part[1], plan_.positions[plan_.q_starts[s]], plan_.kv_lengths[s]};
            static constexpr const char* kFields[kPartInts] = {"rows", "entries", "first position", "kv_length"};
            for (std::size_t f = 0; f < kPartInts; ++f) {
                if (part[f] != want[f]) {
                    fail(INF_STATUS_PEER_FAILED, "step exchange (step_id ", ex_.step_id, ", layer ", layer, "): part ", d,
                         " of the scores message from rank ", rank, " has ", kFields[f], " ", part[f],
                         " but this instance's plan says ", want[f], " (the plans of the two instances disagree)");
                }
            }
            expected += static_cast<std::size_t>(part[1]) * (1 + static_cast<std::size_t>(lists));
            ++d;
        }
        std::int32_t rows_header = 0;
        std::memcpy(&rows_header, ws_.inbox.data() + kRowsField, sizeof rows_header);
        if (got != expected || static_cast<std::size_t>(rows_header) != expected - kHeaderInts - kPartInts * static_cast<std::size_t>(parts)) {
            fail(INF_STATUS_PEER_FAILED, "step exchange (step_id ", ex_.step_id, ", layer ", layer, "): the scores message from rank ",
                 rank, " has ", got, " floats (rows ", rows_header, ") but its parts' entries make ", expected);
        }
        const float* data = ws_.inbox.data() + kHeaderInts + kPartInts * static_cast<std::size_t>(parts);
        d = 0;
        for (std::int32_t i = groups[g + 1]; i < groups[g + 2]; ++i) {
            const std::int32_t s = ex_.remote_sequences[i];
            if (!needs_selection(plan_, shape_, s)) {
                continue;
            }
            std::int32_t entries = 0;
            std::memcpy(&entries, desc + kPartInts * static_cast<std::size_t>(d) + 1, sizeof entries);
            const auto* positions = reinterpret_cast<const std::int32_t*>(data);
            for (std::int32_t e = 0; e < entries; ++e) {
                const std::int32_t p = positions[e];
                if (p < 0 || p % page_size != 0 || p >= plan_.kv_lengths[s] || (e > 0 && p <= positions[e - 1])) {
                    fail(INF_STATUS_PEER_FAILED, "step exchange (step_id ", ex_.step_id, ", layer ", layer, "): part ", d,
                         " of the scores message from rank ", rank, " has entry position ", p, " (entry ", e,
                         "); positions must be multiples of ", page_size, ", ascending and below kv_length ",
                         plan_.kv_lengths[s]);
                }
            }
            ws_.remote_offset[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(ws_.remote_payload.size());
            ws_.remote_entries[static_cast<std::size_t>(i)] = entries;
            const std::size_t count = static_cast<std::size_t>(entries) * (1 + static_cast<std::size_t>(lists));
            ws_.remote_payload.insert(ws_.remote_payload.end(), data, data + count);
            data += count;
            ++d;
        }
    }

    // 2. The global top-k of every list of every selecting sequence.
    const auto n = static_cast<std::int32_t>(sequences.size());
    starts.assign(1, 0);
    indices.clear();
    ws_.flag_offset.assign(static_cast<std::size_t>(ex_.remote_parts), -1);
    ws_.flags.clear();
    for (std::int32_t i = 0; i < ex_.remote_parts; ++i) {
        if (ws_.remote_offset[static_cast<std::size_t>(i)] >= 0) {
            ws_.flag_offset[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(ws_.flags.size());
            ws_.flags.resize(ws_.flags.size() + static_cast<std::size_t>(ws_.remote_entries[static_cast<std::size_t>(i)]) *
                                                    static_cast<std::size_t>(lists), 0);
        }
    }
    std::vector<ExchangeWorkspace::Candidate>& candidates = ws_.candidates;
    for (std::int32_t k = 0; k < n; ++k) {
        const std::int32_t s = sequences[static_cast<std::size_t>(k)];
        const std::int32_t kv_length = plan_.kv_lengths[s];
        const std::int32_t local = page_starts[k + 1] - page_starts[k];
        candidates.clear();
        for (std::int32_t j = 0; j < local; ++j) {
            candidates.push_back({page_positions[page_starts[k] + j], -1, j});
        }
        for (std::int32_t i = 0; i < ex_.remote_parts; ++i) {
            if (ex_.remote_sequences[i] != s || ws_.remote_offset[static_cast<std::size_t>(i)] < 0) {
                continue;
            }
            const auto* positions = reinterpret_cast<const std::int32_t*>(ws_.remote_payload.data() + ws_.remote_offset[static_cast<std::size_t>(i)]);
            for (std::int32_t e = 0; e < ws_.remote_entries[static_cast<std::size_t>(i)]; ++e) {
                candidates.push_back({positions[e], i, e});
            }
        }
        // By position: the single-instance entry order (its ties go to the lower entry), and no page twice.
        std::sort(candidates.begin(), candidates.end(), [](const auto& a, const auto& b) { return a.position < b.position; });
        std::int32_t forced = -1;
        for (std::size_t c = 0; c < candidates.size(); ++c) {
            const auto& here = candidates[c];
            if (c > 0 && candidates[c - 1].position == here.position) {
                const std::int32_t other = candidates[c - 1].owner;
                fail(INF_STATUS_PEER_FAILED, "step exchange (step_id ", ex_.step_id, ", layer ", layer, "): rank ",
                     here.owner >= 0 ? ex_.remote_ranks[here.owner] : comm_.rank(), " and rank ",
                     other >= 0 ? ex_.remote_ranks[other] : comm_.rank(), " both hold position ", here.position,
                     " of sequence ", s, " (the plans disagree on the page's owner)");
            }
            if (here.position <= kv_length - 1 && kv_length - 1 < here.position + page_size) {
                forced = static_cast<std::int32_t>(c);
            }
        }
        const auto total = static_cast<std::int32_t>(candidates.size());
        const std::int32_t count = std::min(total, std::max(1, shape_.budget_pages));
        std::vector<float>& keys = ws_.keys;
        keys.resize(candidates.size());
        std::vector<std::int32_t>& order = ws_.order;
        for (std::int32_t list = 0; list < lists; ++list) {
            const std::int32_t head = per_q ? list / group_size : list;
            if (!skipped_head(layer, head)) {
                for (std::int32_t c = 0; c < total; ++c) {
                    const auto& cand = candidates[static_cast<std::size_t>(c)];
                    float x = 0.0F;
                    if (cand.owner < 0) {
                        x = local_scores[std::int64_t{page_starts[k]} * lists + std::int64_t{list} * local + cand.index];
                    } else {
                        const std::int32_t entries = ws_.remote_entries[static_cast<std::size_t>(cand.owner)];
                        x = ws_.remote_payload[static_cast<std::size_t>(ws_.remote_offset[static_cast<std::size_t>(cand.owner)] +
                                                                      entries + list * entries + cand.index)];
                    }
                    keys[static_cast<std::size_t>(c)] = x == x ? x : -std::numeric_limits<float>::infinity();  // NaN ranks as -inf
                }
                order.clear();
                for (std::int32_t c = 0; c < total; ++c) {
                    if (c != forced || count >= total) {
                        order.push_back(c);
                    }
                }
                std::int32_t want = count;
                if (count < total && forced >= 0) {
                    --want;
                }
                if (want > 0 && want < static_cast<std::int32_t>(order.size())) {
                    // Higher score first; ties to the lower position (candidates are in position order).
                    std::nth_element(order.begin(), order.begin() + (want - 1), order.end(), [&](std::int32_t a, std::int32_t b) {
                        const float ka = keys[static_cast<std::size_t>(a)];
                        const float kb = keys[static_cast<std::size_t>(b)];
                        return ka > kb || (ka == kb && a < b);
                    });
                }
                order.resize(static_cast<std::size_t>(std::max(0, want)));
                if (count < total && forced >= 0) {
                    order.push_back(forced);
                }
                std::sort(order.begin(), order.end());  // position order, hence each owner's entries ascending
                for (const std::int32_t c : order) {
                    const auto& cand = candidates[static_cast<std::size_t>(c)];
                    if (cand.owner < 0) {
                        indices.push_back(cand.index);
                    } else {
                        const std::int32_t entries = ws_.remote_entries[static_cast<std::size_t>(cand.owner)];
                        ws_.flags[static_cast<std::size_t>(ws_.flag_offset[static_cast<std::size_t>(cand.owner)] + list * entries +
                                                           cand.index)] = 1;
                    }
                }
            }
            starts.push_back(static_cast<std::int32_t>(indices.size()));
        }
    }

    // 3. Each creditor's choice.
    for (std::size_t g = 0; g < groups.size(); g += 3) {
        const std::int32_t rank = groups[g];
        std::int32_t parts = 0;
        std::size_t payload = 0;
        for (std::int32_t i = groups[g + 1]; i < groups[g + 2]; ++i) {
            if (ws_.remote_offset[static_cast<std::size_t>(i)] >= 0) {
                ++parts;
                payload += static_cast<std::size_t>(ws_.remote_entries[static_cast<std::size_t>(i)]) * static_cast<std::size_t>(lists);
            }
        }
        if (parts == 0) {
            continue;
        }
        const std::size_t floats = kHeaderInts + kPartInts * static_cast<std::size_t>(parts) + payload;
        float* out = begin_message(floats, kSelection, layer, parts, static_cast<std::int32_t>(payload));
        float* data = out + kPartInts * static_cast<std::size_t>(parts);
        std::int32_t d = 0;
        for (std::int32_t i = groups[g + 1]; i < groups[g + 2]; ++i) {
            if (ws_.remote_offset[static_cast<std::size_t>(i)] < 0) {
                continue;
            }
            const std::int32_t s = ex_.remote_sequences[i];
            const std::int32_t entries = ws_.remote_entries[static_cast<std::size_t>(i)];
            const std::int32_t part[kPartInts] = {1, entries, plan_.positions[plan_.q_starts[s]], plan_.kv_lengths[s]};
            std::memcpy(out + kPartInts * static_cast<std::size_t>(d++), part, sizeof part);
            const std::size_t count = static_cast<std::size_t>(entries) * static_cast<std::size_t>(lists);
            std::memcpy(data, ws_.flags.data() + ws_.flag_offset[static_cast<std::size_t>(i)], count * sizeof(std::int32_t));
            data += count;
        }
        send(rank, kExchangeSelectionTag, floats, layer, "sending the page selection to");
    }
}

void StepExchange::receive_selection(std::int32_t layer) {
    const std::int32_t lists = shape_.lists_per_sequence;
    ws_.sel_starts.assign(1, 0);
    ws_.sel_indices.clear();
    const std::vector<std::int32_t>& groups = ws_.served_groups;
    for (std::size_t g = 0; g < groups.size(); g += 3) {
        const std::int32_t rank = groups[g];
        std::int32_t parts = 0;
        std::size_t expected = 0;
        for (std::int32_t i = groups[g + 1]; i < groups[g + 2]; ++i) {
            const std::int32_t k = ws_.sel_of_part[static_cast<std::size_t>(i)];
            if (k >= 0) {
                ++parts;
                expected += static_cast<std::size_t>(ws_.sel_page_starts[k + 1] - ws_.sel_page_starts[k]) * static_cast<std::size_t>(lists);
            }
        }
        if (parts == 0) {
            continue;
        }
        const std::size_t got = receive(rank, kExchangeSelectionTag, kSelection, layer, parts);
        const std::int32_t* desc = reinterpret_cast<const std::int32_t*>(ws_.inbox.data() + kHeaderInts);
        std::int32_t d = 0;
        for (std::int32_t i = groups[g + 1]; i < groups[g + 2]; ++i) {
            const std::int32_t k = ws_.sel_of_part[static_cast<std::size_t>(i)];
            if (k < 0) {
                continue;
            }
            const std::int32_t expect[kPartInts] = {1, ws_.sel_page_starts[k + 1] - ws_.sel_page_starts[k],
                                                    ex_.served_positions[ex_.served_q_starts[i]], ex_.served_kv_lengths[i]};
            std::int32_t part[kPartInts] = {};
            std::memcpy(part, desc + kPartInts * static_cast<std::size_t>(d), sizeof part);
            static constexpr const char* kFields[kPartInts] = {"rows", "entries", "first position", "kv_length"};
            for (std::size_t f = 0; f < kPartInts; ++f) {
                if (part[f] != expect[f]) {
                    fail(INF_STATUS_PEER_FAILED, "step exchange (step_id ", ex_.step_id, ", layer ", layer, "): part ", d,
                         " of the selection message from rank ", rank, " has ", kFields[f], " ", part[f],
                         " but this instance's plan says ", expect[f], " (the plans of the two instances disagree)");
                }
            }
            ++d;
        }
        std::int32_t rows_header = 0;
        std::memcpy(&rows_header, ws_.inbox.data() + kRowsField, sizeof rows_header);
        const std::size_t floats = kHeaderInts + kPartInts * static_cast<std::size_t>(parts) + expected;
        if (got != floats || static_cast<std::size_t>(rows_header) != expected) {
            fail(INF_STATUS_PEER_FAILED, "step exchange (step_id ", ex_.step_id, ", layer ", layer, "): the selection message "
                 "from rank ", rank, " has ", got, " floats (rows ", rows_header, ") but this instance's parts make ", floats);
        }
        // Lists in the order of the selecting parts (sel_of_part), which the served groups follow.
        const auto* flags = reinterpret_cast<const std::int32_t*>(ws_.inbox.data() + kHeaderInts + kPartInts * static_cast<std::size_t>(parts));
        d = 0;
        for (std::int32_t i = groups[g + 1]; i < groups[g + 2]; ++i) {
            const std::int32_t k = ws_.sel_of_part[static_cast<std::size_t>(i)];
            if (k < 0) {
                continue;
            }
            const std::int32_t entries = ws_.sel_page_starts[k + 1] - ws_.sel_page_starts[k];
            for (std::int32_t list = 0; list < lists; ++list) {
                for (std::int32_t e = 0; e < entries; ++e) {
                    const std::int32_t flag = *flags++;
                    if (flag != 0 && flag != 1) {
                        fail(INF_STATUS_PEER_FAILED, "step exchange (step_id ", ex_.step_id, ", layer ", layer, "): part ", d,
                             " of the selection message from rank ", rank, " has flag ", flag, " (list ", list, ", entry ", e,
                             "); flags must be 0 or 1");
                    }
                    if (flag == 1) {
                        ws_.sel_indices.push_back(e);
                    }
                }
                ws_.sel_starts.push_back(static_cast<std::int32_t>(ws_.sel_indices.size()));
            }
            ++d;
        }
    }
}

void StepExchange::split_served() {
    for (AttentionGroup& group : ws_.served_split) {
        group.sequences.clear();
    }
    for (std::int32_t i = 0; i < ex_.served_parts; ++i) {
        const bool decode = ex_.served_q_starts[i + 1] - ex_.served_q_starts[i] == 1;
        ws_.served_split[decode ? 0 : 1].sequences.push_back(i);
    }
    for (int g = 0; g < 2; ++g) {
        AttentionGroup& group = ws_.served_split[g];
        group.decode = g == 0;
        group.all = static_cast<std::int32_t>(group.sequences.size()) == ex_.served_parts;
        group.gather(ex_.served_q_starts, ex_.served_positions, ex_.served_kv_lengths, ex_.served_page_starts,
                     ex_.served_page_ids, ex_.served_page_positions);
        if (!group.all && !group.sequences.empty()) {
            grow(group.q, static_cast<std::int64_t>(group.rows.size()) * q_width_);
            grow(group.o, static_cast<std::int64_t>(group.rows.size()) * q_width_);
            grow(group.lse, static_cast<std::int64_t>(group.rows.size()) * config_.q_heads);
        }
    }
}

void StepExchange::attend_served(std::int32_t layer, AttentionGroup& group, const std::int32_t* streaming) {
    if (group.sequences.empty()) {
        return;
    }
    const inf_sparse_step& sp = shape_.sparse_step;
    const auto rows = static_cast<std::int32_t>(group.rows.size());
    inf_attention_params params{};
    params.layer = pool_.kv_layer(layer);
    params.sequences = static_cast<std::int32_t>(group.sequences.size());
    params.q_heads = config_.q_heads;
    params.total_q = rows;
    params.max_q = group.max_q;
    params.max_entries = group.widest;
    params.scale = 1.0F / std::sqrt(static_cast<float>(config_.head_dim));
    params.q_dtype = INF_DTYPE_F32;
    if (group.all) {
        params.q = ws_.serve_q.data();
        params.o = ws_.serve_o.data();
        params.lse = ws_.serve_lse.data();
    } else {
        for (std::int32_t r = 0; r < rows; ++r) {
            std::memcpy(group.q.data() + std::int64_t{r} * q_width_, ws_.serve_q.data() + std::int64_t{group.rows[r]} * q_width_,
                        static_cast<std::size_t>(q_width_) * sizeof(float));
        }
        params.q = group.q.data();
        params.o = group.o.data();
        params.lse = group.lse.data();
    }
    params.q_starts = group.q_starts.data();
    params.q_positions = group.positions.data();
    params.kv_lengths = group.kv_lengths.data();
    params.page_starts = group.page_starts.data();
    params.page_ids = group.page_ids.data();
    params.page_positions = group.page_positions.data();
    params.streaming_heads = streaming;
    params.sink_tokens = group.decode ? sp.decode_sink_tokens : sp.prefill_sink_tokens;
    params.local_tokens = group.decode ? sp.decode_local_tokens : sp.prefill_local_tokens;
    bool any_selection = false;
    for (const std::int32_t i : group.sequences) {
        any_selection = any_selection || (shape_.global_selection && ws_.sel_of_part[static_cast<std::size_t>(i)] >= 0);
    }
    if (group.decode && (streaming != nullptr || any_selection)) {
        // As the home's decode rows: streaming heads read only the entries in their window (the mask does the
        // rest), retrieval heads of a selecting part the entries the home chose.
        const std::int32_t per_kv = sp.per_query_head != 0 && any_selection ? config_.q_heads / config_.kv_heads : 1;
        ws_.head_starts.assign(1, 0);
        ws_.head_indices.clear();
        std::int32_t longest = 0;
        for (std::size_t p = 0; p < group.sequences.size(); ++p) {
            SequenceLists in;
            in.kv_length = group.kv_lengths[p];
            in.page_size = pool_.config().page_size;
            in.lists = config_.kv_heads * per_kv;
            in.lists_per_kv_head = per_kv;
            in.streaming = streaming;
            const std::int32_t k = shape_.global_selection ? ws_.sel_of_part[static_cast<std::size_t>(group.sequences[p])] : -1;
            if (k >= 0) {
                in.selected = ws_.sel_indices.data();
                in.selected_starts = ws_.sel_starts.data() + std::int64_t{k} * shape_.lists_per_sequence;
            }
            in.sink_tokens = params.sink_tokens;
            in.local_tokens = params.local_tokens;
            in.by_position = true;
            in.positions = group.page_positions.data() + group.page_starts[p];
            in.entries = group.page_starts[p + 1] - group.page_starts[p];
            longest = std::max(longest, append_sequence_lists(in, ws_.head_starts, ws_.head_indices));
        }
        params.head_page_starts = ws_.head_starts.data();
        params.head_page_indices = ws_.head_indices.data();
        params.head_lists_per_query_head = per_kv > 1 ? 1 : 0;
        params.max_entries = longest;
    }
    Backend& backend = device_.backend();
    const std::uint64_t scratch = backend.attention_workspace_bytes(device_.ordinal(), params);
    params.workspace = scratch == 0 ? nullptr : grow(attention_scratch_, static_cast<std::int64_t>(scratch / sizeof(float) + 1));
    params.workspace_bytes = scratch;
    backend.attention(device_.ordinal(), params);
    if (!group.all) {
        for (std::int32_t r = 0; r < rows; ++r) {
            const std::int64_t to = group.rows[r];
            std::memcpy(ws_.serve_o.data() + to * q_width_, group.o.data() + std::int64_t{r} * q_width_,
                        static_cast<std::size_t>(q_width_) * sizeof(float));
            std::memcpy(ws_.serve_lse.data() + to * config_.q_heads, group.lse.data() + std::int64_t{r} * config_.q_heads,
                        static_cast<std::size_t>(config_.q_heads) * sizeof(float));
        }
    }
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
    const char* what = kind == kQuery    ? "waiting for queries from"
                       : kind == kReply  ? "waiting for the reply of"
                       : kind == kScores ? "waiting for the page scores of"
                                         : "waiting for the page selection of";
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

void StepExchange::receive_queries(std::int32_t layer, StepProfile::Timer& timer) {
    const std::vector<std::int32_t>& groups = ws_.served_groups;
    queries_received_ = true;
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
}

void StepExchange::serve(std::int32_t layer, StepProfile::Timer& timer) {
    const std::vector<std::int32_t>& groups = ws_.served_groups;
    if (groups.empty()) {
        return;
    }
    if (!queries_received_) {
        receive_queries(layer, timer);
    }
    queries_received_ = false;
    if (shape_.global_selection) {
        receive_selection(layer);
        timer.lap(StepPhase::exchange);
    }

    const std::int32_t* streaming = nullptr;
    if (shape_.sparse && shape_.sparse_step.streaming_heads != nullptr) {
        streaming = shape_.sparse_step.streaming_heads + std::int64_t{layer} * config_.kv_heads;
        if (std::none_of(streaming, streaming + config_.kv_heads, [](std::int32_t f) { return f != 0; })) {
            streaming = nullptr;
        }
    }
    if (streaming != nullptr || shape_.global_selection) {
        for (AttentionGroup& group : ws_.served_split) {
            attend_served(layer, group, streaming);
        }
    } else {
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
    }
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
        if (shape_.global_selection) {  // a creditor may wait for the home's selection, a home for scores
            tell(ws_.remote_groups, kExchangeSelectionTag);
            tell(ws_.served_groups, kExchangeScoresTag);
        }
    } catch (...) {
        // Out of memory building the message: the peers fall back to their timeouts.
    }
}

}  // namespace inf
