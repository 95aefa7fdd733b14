// Streaming heads' KV as a fixed ring of pages per sequence (LServe; inf_streaming_ring in infinite.h).
//
// A streaming head reads only the sink keys and the keys of its local window, so a sequence's ring holds
// sink_pages pages that never move, then local_pages pages reused in turn: the page of keys p / P (P the
// ring pool's page size) lives in entry p / P while that is < sink_pages, else in entry
// sink_pages + (p / P - sink_pages) % local_pages. A step lists, per sequence, the entries its queries can
// see (the sink pages written so far, then the pages from its window's first to its newest, in position
// order, each with the position of its slot 0), and the Λ mask of the attention kernel hides the keys of
// those pages that fall outside the window.
#pragma once

#include <cstdint>
#include <vector>

namespace inf {

// Pages of the sink: ceil(sink_tokens / page_size).
inline std::int32_t ring_sink_pages(std::int32_t sink_tokens, std::int32_t page_size) noexcept {
    return (sink_tokens + page_size - 1) / page_size;
}

// Pages any `window` consecutive key positions (window >= 1) can touch: ceil((window - 1) / page_size) + 1.
inline std::int64_t ring_window_pages(std::int64_t window, std::int32_t page_size) noexcept {
    return (window - 1 + page_size - 1) / page_size + 1;
}

// Entry of the sequence's ring (of `entries` pages, more than sink_pages) that holds the key at position p.
inline std::int32_t ring_entry(std::int64_t p, std::int32_t page_size, std::int32_t sink_pages,
                               std::int32_t entries) noexcept {
    const std::int64_t page = p / page_size;
    if (page < sink_pages) {
        return static_cast<std::int32_t>(page);
    }
    return sink_pages + static_cast<std::int32_t>((page - sink_pages) % (entries - sink_pages));
}

// One sequence's ring as the step uses it.
struct RingSequence {
    const std::int32_t* pages = nullptr;  // its ring: entry i is page pages[i] of the ring pool
    std::int32_t entries = 0;
    std::int32_t page_size = 0;
    std::int32_t sink_pages = 0;
    std::int32_t kv_length = 0;       // keys at positions < kv_length exist (all written before attention)
    std::int32_t first_query = 0;     // position of its first query row this step
    std::int32_t local_tokens = 0;    // the Λ window of its rows (decode or prefill)
};

// Appends the pages the sequence's queries can see to page_ids, with the first key position of each to
// positions, in position order: sink pages, then the pages from the window of first_query on to the newest.
// Returns how many it appended.
std::int32_t append_ring_entries(const RingSequence& ring, std::vector<std::int32_t>& page_ids,
                                 std::vector<std::int32_t>& positions);

}  // namespace inf
