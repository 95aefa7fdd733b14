#include "model/exchange_checks.h"

#include <algorithm>
#include <limits>

#include "api/batch_checks.h"
#include "api/checks.h"
#include "comm/communicator.h"
#include "core/status.h"

namespace inf {

namespace {

constexpr const char* kExchange = "plan->exchange->";

// A peer rank: in the group and not this instance (an instance never exchanges with itself).
void check_rank(const Communicator& comm, std::int32_t rank, const char* field, std::int32_t i) {
    if (rank < 0 || rank >= comm.size()) {
        fail(INF_STATUS_OUT_OF_RANGE, kExchange, field, "[", i, "] (", rank, ") is not a rank of the group (0 .. ",
             comm.size() - 1, ")");
    }
    if (rank == comm.rank()) {
        fail(INF_STATUS_INVALID_ARGUMENT, kExchange, field, "[", i, "] (", rank,
             ") is this instance's own rank: a part lives on a peer");
    }
}

// Home side: parts grouped by rank (ascending), within a rank by sequence (ascending, each at most once).
void check_remote(const inf_step_plan& plan, const inf_step_exchange& ex, const Communicator& comm) {
    if (ex.remote_parts < 0) {
        fail(INF_STATUS_INVALID_ARGUMENT, kExchange, "remote_parts (", ex.remote_parts, ") must be >= 0");
    }
    if (ex.remote_parts == 0) {
        return;
    }
    api::require_array(ex.remote_sequences, kExchange, "remote_sequences");
    api::require_array(ex.remote_ranks, kExchange, "remote_ranks");
    for (std::int32_t i = 0; i < ex.remote_parts; ++i) {
        check_rank(comm, ex.remote_ranks[i], "remote_ranks", i);
        const std::int32_t s = ex.remote_sequences[i];
        if (s < 0 || s >= plan.sequences) {
            fail(INF_STATUS_OUT_OF_RANGE, kExchange, "remote_sequences[", i, "] (", s, ") is not a sequence of the plan (0 .. ",
                 plan.sequences - 1, ")");
        }
        if (i == 0) {
            continue;
        }
        if (ex.remote_ranks[i] < ex.remote_ranks[i - 1]) {
            fail(INF_STATUS_INVALID_ARGUMENT, kExchange, "remote_ranks[", i, "] (", ex.remote_ranks[i], ") is less than ",
                 kExchange, "remote_ranks[", i - 1, "] (", ex.remote_ranks[i - 1], "): parts must be grouped by rank, ascending");
        }
        if (ex.remote_ranks[i] == ex.remote_ranks[i - 1] && s <= ex.remote_sequences[i - 1]) {
            fail(INF_STATUS_INVALID_ARGUMENT, kExchange, "remote_sequences[", i, "] (", s, ") is not greater than ", kExchange,
                 "remote_sequences[", i - 1, "] (", ex.remote_sequences[i - 1], "): within rank ", ex.remote_ranks[i],
                 " sequences must be ascending, each at most once");
        }
    }
}

// Serving side, per part: ranks grouped ascending, query rows at consecutive positions ending at
// kv_length - 1. Returns the served rows.
std::int32_t check_served_rows(const inf_step_exchange& ex, const Communicator& comm, StepShape& shape) {
    api::require_array(ex.served_ranks, kExchange, "served_ranks");
    api::require_array(ex.served_q_starts, kExchange, "served_q_starts");
    api::require_array(ex.served_kv_lengths, kExchange, "served_kv_lengths");
    api::check_prefix(ex.served_q_starts, ex.served_parts, kExchange, "served_q_starts");
    const std::int32_t rows = ex.served_q_starts[ex.served_parts];
    if (rows > 0) {
        api::require_array(ex.served_positions, kExchange, "served_positions");
    }
    for (std::int32_t i = 0; i < ex.served_parts; ++i) {
        check_rank(comm, ex.served_ranks[i], "served_ranks", i);
        if (i > 0 && ex.served_ranks[i] < ex.served_ranks[i - 1]) {
            fail(INF_STATUS_INVALID_ARGUMENT, kExchange, "served_ranks[", i, "] (", ex.served_ranks[i], ") is less than ",
                 kExchange, "served_ranks[", i - 1, "] (", ex.served_ranks[i - 1], "): parts must be grouped by rank, ascending");
        }
        const std::int32_t first = ex.served_q_starts[i];
        const std::int32_t last = ex.served_q_starts[i + 1] - 1;
        if (last < first) {
            fail(INF_STATUS_INVALID_ARGUMENT, kExchange, "served_q_starts: part ", i, " has no query row (each part has one or more)");
        }
        if (ex.served_positions[first] < 0) {
            fail(INF_STATUS_INVALID_ARGUMENT, kExchange, "served_positions[", first, "] (", ex.served_positions[first],
                 ") must be >= 0");
        }
        for (std::int32_t r = first + 1; r <= last; ++r) {
            if (ex.served_positions[r] != ex.served_positions[r - 1] + 1) {
                fail(INF_STATUS_INVALID_ARGUMENT, kExchange, "served_positions[", r, "] (", ex.served_positions[r],
                     ") does not follow ", kExchange, "served_positions[", r - 1, "] (", ex.served_positions[r - 1],
                     "): the positions of part ", i, " must be consecutive");
            }
        }
        if (ex.served_kv_lengths[i] != ex.served_positions[last] + 1) {
            fail(INF_STATUS_INVALID_ARGUMENT, kExchange, "served_kv_lengths[", i, "] (", ex.served_kv_lengths[i],
                 ") must be the last position of part ", i, " + 1 (", kExchange, "served_positions[", last, "] is ",
                 ex.served_positions[last], ")");
        }
        shape.served_max_q = std::max(shape.served_max_q, last + 1 - first);
    }
    return rows;
}

// Serving side, per part: page ids of the pool at ascending multiples of the page size.
void check_served_pages(const PagePool& pool, const inf_step_exchange& ex, StepShape& shape) {
    const inf_page_pool_config& config = pool.config();
    api::require_array(ex.served_page_starts, kExchange, "served_page_starts");
    shape.served_widest = static_cast<std::int32_t>(
        api::check_prefix(ex.served_page_starts, ex.served_parts, kExchange, "served_page_starts"));
    const std::int32_t entries = ex.served_page_starts[ex.served_parts];
    if (entries > 0) {
        api::require_array(ex.served_page_ids, kExchange, "served_page_ids");
        api::require_array(ex.served_page_positions, kExchange, "served_page_positions");
    }
    const std::int32_t last = std::numeric_limits<std::int32_t>::max() - config.page_size + 1;
    for (std::int32_t i = 0; i < ex.served_parts; ++i) {
        for (std::int32_t j = ex.served_page_starts[i]; j < ex.served_page_starts[i + 1]; ++j) {
            if (ex.served_page_ids[j] < 0 || ex.served_page_ids[j] >= config.pages) {
                fail(INF_STATUS_OUT_OF_RANGE, kExchange, "served_page_ids[", j, "] (", ex.served_page_ids[j],
                     ") is out of range: the pool has ", config.pages, config.pages == 1 ? " page" : " pages");
            }
            const std::int32_t p = ex.served_page_positions[j];
            if (p < 0 || p % config.page_size != 0 || p > last) {
                fail(INF_STATUS_INVALID_ARGUMENT, kExchange, "served_page_positions[", j, "] (", p,
                     ") must be a multiple of the page size (", config.page_size, ") from 0 to ", last);
            }
            if (j > ex.served_page_starts[i] && p <= ex.served_page_positions[j - 1]) {
                fail(INF_STATUS_INVALID_ARGUMENT, kExchange, "served_page_positions[", j, "] (", p, ") must be greater than ",
                     kExchange, "served_page_positions[", j - 1, "] (", ex.served_page_positions[j - 1],
                     "): the entries of part ", i, " must be ascending");
            }
        }
    }
}

// Serving side: a row whose position one of the part's entries covers is stored in that entry's page, so
// its K and V must come from the home (served_receives_kv) and served_append_pages must name that page; any
// other row is stored elsewhere (-1).
void check_served_appends(const PagePool& pool, const inf_step_exchange& ex) {
    const std::int32_t page_size = pool.config().page_size;
    bool any_kv = false;
    for (std::int32_t i = 0; ex.served_receives_kv != nullptr && i < ex.served_parts; ++i) {
        any_kv = any_kv || ex.served_receives_kv[i] != 0;
    }
    if (any_kv) {
        api::require_array(ex.served_append_pages, kExchange, "served_append_pages");
    }
    for (std::int32_t i = 0; i < ex.served_parts; ++i) {
        const bool kv = ex.served_receives_kv != nullptr && ex.served_receives_kv[i] != 0;
        std::int32_t j = ex.served_page_starts[i];
        const std::int32_t end = ex.served_page_starts[i + 1];
        for (std::int32_t r = ex.served_q_starts[i]; r < ex.served_q_starts[i + 1]; ++r) {
            const std::int64_t p = ex.served_positions[r];
            while (j < end && std::int64_t{ex.served_page_positions[j]} + page_size <= p) {
                ++j;
            }
            const bool covered = j < end && ex.served_page_positions[j] <= p;
            const std::int32_t expected = covered ? ex.served_page_ids[j] : -1;
            if (covered && !kv) {
                fail(INF_STATUS_INVALID_ARGUMENT, kExchange, "served_receives_kv[", i, "] is 0 but ", kExchange,
                     "served_page_positions[", j, "] (", ex.served_page_positions[j], ") covers position ", p,
                     " of this step (served row ", r, "): the home must send that token's K and V");
            }
            const std::int32_t given = ex.served_append_pages != nullptr ? ex.served_append_pages[r] : -1;
            if (given != expected) {
                if (covered) {
                    fail(INF_STATUS_INVALID_ARGUMENT, kExchange, "served_append_pages[", r, "] (", given, ") must be ", expected,
                         ", the page of part ", i, " that covers position ", p, " (", kExchange, "served_page_ids[", j, "])");
                }
                fail(INF_STATUS_INVALID_ARGUMENT, kExchange, "served_append_pages[", r, "] (", given,
                     ") must be -1: no entry of part ", i, " covers position ", p, " (the row is stored elsewhere)");
            }
        }
    }
}

}  // namespace

bool remote_sends_kv(const inf_step_exchange& ex, std::int32_t s) noexcept {
    for (std::int32_t i = 0; i < ex.remote_parts; ++i) {
        if (ex.remote_sequences[i] == s && part_sends_kv(ex, i)) {
            return true;
        }
    }
    return false;
}

void check_exchange(const PagePool& pool, const inf_step_plan& plan, StepShape& shape) {
    const inf_step_exchange& ex = shape.ex;
    const Communicator& comm = *shape.comm;
    check_remote(plan, ex, comm);
    if (ex.served_parts < 0) {
        fail(INF_STATUS_INVALID_ARGUMENT, kExchange, "served_parts (", ex.served_parts, ") must be >= 0");
    }
    if (ex.served_parts == 0) {
        return;
    }
    shape.served_rows = check_served_rows(ex, comm, shape);
    check_served_pages(pool, ex, shape);
    check_served_appends(pool, ex);
}

}  // namespace inf
