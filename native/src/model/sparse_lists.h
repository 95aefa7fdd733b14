// Per-head page lists of one decode sequence for a sparse attention call (LServe): streaming heads read
// only the entries that overlap their Λ window (sink + local keys), retrieval heads read their selected
// entries (with the entry of the newest key forced in) or, without a selection, every entry. The lists
// are in inf_attention_batch form: entry indices relative to the sequence's page_starts, ascending.
#pragma once

#include <cstdint>
#include <vector>

namespace inf {

struct SequenceLists {
    std::int32_t kv_length = 0;  // the query is at kv_length - 1
    std::int32_t page_size = 0;
    std::int32_t lists = 0;            // lists of the sequence: kv_heads, or q_heads per query head
    std::int32_t lists_per_kv_head = 1;  // q_heads / kv_heads per query head, else 1
    const std::int32_t* streaming = nullptr;  // [kv_heads] flags of the layer, or null
    std::int32_t sink_tokens = 0;
    std::int32_t local_tokens = 0;
    // Selected lists of retrieval heads, or null: list i is selected[i * selected_stride + 1 ..], with
    // selected[i * selected_stride] entries when counts_inline, else counts from selected_starts.
    const std::int32_t* selected = nullptr;
    const std::int32_t* selected_starts = nullptr;  // [lists + 1] prefix offsets into selected (fresh selection)
    std::int64_t selected_stride = 0;               // slot layout: count then entries (stored selection)
    // by_position: the sequence's entries with their positions (slot 0 of entry j at positions[j], ascending);
    // else entry j is logical page j. A distributed step's parts hold a few pages from anywhere in the sequence,
    // so their lists pick entries by position; a retrieval head with a selection (selected_starts form) reads
    // the selected entries as they are (a global selection already holds the newest key's entry, if here).
    bool by_position = false;
    const std::int32_t* positions = nullptr;  // [entries] when by_position (null when entries is 0)
    std::int32_t entries = 0;
};

// Appends the sequence's lists to indices, and their end offsets to starts (whose first value, 0, the
// caller pushes once per call). Returns the longest list.
std::int32_t append_sequence_lists(const SequenceLists& in, std::vector<std::int32_t>& starts,
                                   std::vector<std::int32_t>& indices);

}  // namespace inf
