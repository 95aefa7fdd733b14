#include "model/streaming_ring.h"

#include <algorithm>

namespace inf {

std::int32_t append_ring_entries(const RingSequence& ring, std::vector<std::int32_t>& page_ids,
                                 std::vector<std::int32_t>& positions) {
    const std::int32_t newest = (ring.kv_length - 1) / ring.page_size;
    const std::int32_t sink_end = std::min(ring.sink_pages, newest + 1);
    // The earliest query sees keys > first_query - local_tokens; older local pages were overwritten or are
    // wholly outside every row's band.
    const std::int32_t oldest_key = std::max(0, ring.first_query - ring.local_tokens + 1);
    const std::int32_t local_begin = std::max(ring.sink_pages, oldest_key / ring.page_size);
    std::int32_t appended = 0;
    const auto add = [&](std::int32_t page) {
        const std::int64_t first = std::int64_t{page} * ring.page_size;
        page_ids.push_back(ring.pages[ring_entry(first, ring.page_size, ring.sink_pages, ring.entries)]);
        positions.push_back(static_cast<std::int32_t>(first));
        ++appended;
    };
    for (std::int32_t page = 0; page < sink_end; ++page) {
        add(page);
    }
    for (std::int32_t page = local_begin; page <= newest; ++page) {
        add(page);
    }
    return appended;
}

}  // namespace inf
