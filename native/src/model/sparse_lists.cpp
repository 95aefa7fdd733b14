#include "model/sparse_lists.h"

#include <algorithm>

namespace inf {

std::int32_t append_sequence_lists(const SequenceLists& in, std::vector<std::int32_t>& starts,
                                   std::vector<std::int32_t>& indices) {
    const std::int32_t position = in.kv_length - 1;
    const std::int32_t newest = position / in.page_size;
    std::int32_t longest = 0;
    for (std::int32_t list = 0; list < in.lists; ++list) {
        const std::size_t begin = indices.size();
        const std::int32_t kv_head = list / in.lists_per_kv_head;
        if (in.by_position) {
            // Entries by position: those holding a key the query sees (<= position), and on a streaming head
            // only those that overlap the sink keys (< sink_tokens) or the local band (> position - local).
            const bool streaming = in.streaming != nullptr && in.streaming[kv_head] != 0;
            if (!streaming && in.selected_starts != nullptr) {
                // A global selection (distributed step): this instance's chosen entries, ascending, as given.
                indices.insert(indices.end(), in.selected + in.selected_starts[list], in.selected + in.selected_starts[list + 1]);
                longest = std::max(longest, static_cast<std::int32_t>(indices.size() - begin));
                starts.push_back(static_cast<std::int32_t>(indices.size()));
                continue;
            }
            for (std::int32_t j = 0; j < in.entries; ++j) {
                const std::int32_t first = in.positions[j];
                if (first > position) {
                    break;
                }
                if (!streaming || first < in.sink_tokens || first + in.page_size - 1 > position - in.local_tokens) {
                    indices.push_back(j);
                }
            }
        } else if (in.streaming != nullptr && in.streaming[kv_head] != 0) {
            // Keys < sink_tokens, and keys > position - local_tokens.
            const std::int32_t sink_end = std::min(newest + 1, (in.sink_tokens + in.page_size - 1) / in.page_size);
            const std::int32_t local_begin = std::max(0, position - in.local_tokens + 1) / in.page_size;
            for (std::int32_t j = 0; j < sink_end; ++j) {
                indices.push_back(j);
            }
            for (std::int32_t j = std::max(sink_end, local_begin); j <= newest; ++j) {
                indices.push_back(j);
            }
        } else if (in.selected != nullptr) {
            const std::int32_t* chosen = nullptr;
            std::int32_t count = 0;
            if (in.selected_starts != nullptr) {
                chosen = in.selected + in.selected_starts[list];
                count = in.selected_starts[list + 1] - in.selected_starts[list];
            } else {
                chosen = in.selected + list * in.selected_stride + 1;
                count = in.selected[list * in.selected_stride];
            }
            // A reused selection may predate the newest page: it is always read (LServe keeps the local page).
            bool has_newest = false;
            for (std::int32_t i = 0; i < count; ++i) {
                if (!has_newest && chosen[i] > newest) {
                    indices.push_back(newest);
                    has_newest = true;
                }
                has_newest = has_newest || chosen[i] == newest;
                if (chosen[i] <= newest) {
                    indices.push_back(chosen[i]);
                }
            }
            if (!has_newest) {
                indices.push_back(newest);
            }
        } else {
            for (std::int32_t j = 0; j <= newest; ++j) {
                indices.push_back(j);
            }
        }
        longest = std::max(longest, static_cast<std::int32_t>(indices.size() - begin));
        starts.push_back(static_cast<std::int32_t>(indices.size()));
    }
    return longest;
}

}  // namespace inf
