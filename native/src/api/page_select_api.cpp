// Export: query-aware page selection for retrieval heads (inf_page_select, LServe).
//
// Everything the kernel will index is validated here, on the host, before it runs (attention_params.h:
// kernels trust the core). The output lists are sized here: sequence s keeps
// min(entries of s, max(1, budget_tokens / page_size)) entries in each of its lists. A host_accessible()
// backend gets the caller's arrays and output pointers directly (default page_positions go into the
// call's scratch set); any other backend gets the int arrays packed into one block staged to the
// device, writes its outputs into that block, and the core copies them back to the caller. The score
// workspace is the scratch set's workspace, grown to page_select_workspace_bytes.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "api/batch_checks.h"
#include "api/checks.h"
#include "kv/dtype.h"
#include "kv/page_pool.h"

using namespace inf;

namespace {

void require_array(const void* pointer, const char* field) { api::require_array(pointer, "selection->", field); }

}  // namespace

extern "C" {

INF_API inf_status inf_page_select(const inf_page_pool* pool, int32_t layer, const inf_page_selection* selection,
                                   const inf_buffer* q, int32_t* out_head_page_starts, int32_t* out_head_page_indices,
                                   int64_t index_capacity) {
    return guard("inf_page_select", [&] {
        const auto object = api::find_pool(pool, "pool");
        const PagePool& kv = *object;
        kv.check_layer(layer);
        kv.check_layer_heads(layer);
        // The layer's own head count (config.layer_kv_heads) is the kv_heads every check below sees.
        inf_page_pool_config config = kv.config();
        config.kv_heads = kv.layer_heads(layer);
        const inf_page_selection sel = api::read_versioned(selection, "selection", "inf_page_selection");
        const auto q_buffer = api::find_buffer(q, "q");
        const Device& device = kv.device();
        api::check_same_device(*q_buffer, "q", device, "the pool");
        if (config.logical_page_size == 0) {
            fail(INF_STATUS_UNSUPPORTED,
                 "the pool keeps no summaries (config->logical_page_size is 0): page selection needs them");
        }
        api::require_pointer(out_head_page_starts, "out_head_page_starts");

        // Scalars.
        const std::int32_t sequences = sel.sequences;
        const std::int32_t q_dtype = api::check_queries("selection", sequences, sel.q_heads, raw_enum(sel.q_dtype), config);
        if (sel.budget_tokens < config.page_size) {
            fail(INF_STATUS_INVALID_ARGUMENT, "selection->budget_tokens (", sel.budget_tokens,
                 ") is smaller than one page (", config.page_size, ")");
        }
        if (sel.per_query_head != 0 && sel.per_query_head != 1) {
            fail(INF_STATUS_INVALID_ARGUMENT, "selection->per_query_head (", sel.per_query_head,
                 ") must be 0 (one list per KV head) or 1 (one list per query head)");
        }
        const std::int32_t budget_pages = std::max(1, sel.budget_tokens / config.page_size);
        const std::int32_t lists_per_sequence = sel.per_query_head != 0 ? sel.q_heads : config.kv_heads;
        const std::int64_t lists = std::int64_t{sequences} * lists_per_sequence;

        // Arrays, in the order of the struct.
        const std::uint64_t row_bytes = static_cast<std::uint64_t>(sel.q_heads) *
                                        static_cast<std::uint64_t>(config.head_dim) *
                                        element_size(static_cast<inf_dtype>(q_dtype));
        const std::uint64_t q_rows_held = q_buffer->size() / row_bytes;
        std::int64_t entries = 0;
        std::int64_t needed = 0;
        if (sequences > 0) {
            require_array(sel.q_rows, "q_rows");
            for (std::int32_t s = 0; s < sequences; ++s) {
                if (sel.q_rows[s] < 0 || static_cast<std::uint64_t>(sel.q_rows[s]) >= q_rows_held) {
                    fail(INF_STATUS_OUT_OF_RANGE, "selection->q_rows[", s, "] (", sel.q_rows[s],
                         ") is out of range: q holds ", q_rows_held, " rows of q_heads * head_dim * sizeof(q_dtype) = ",
                         row_bytes, " bytes");
                }
            }
            entries = api::check_page_table({sel.kv_lengths, sel.page_starts, sel.page_ids, sel.page_positions},
                                            sequences, config, "selection->")
                          .entries;
            for (std::int32_t s = 0; s < sequences; ++s) {
                const std::int64_t count = std::int64_t{sel.page_starts[s + 1]} - sel.page_starts[s];
                needed += std::min<std::int64_t>(count, budget_pages) * lists_per_sequence;
            }
        }
        if (index_capacity < needed) {
            fail(INF_STATUS_OUT_OF_RANGE, "index_capacity (", index_capacity, ") is too small: the selection needs ",
                 needed, " indices (", lists, " lists of up to ", budget_pages, " entries)");
        }
        if (needed > 0) {
            api::require_pointer(out_head_page_indices, "out_head_page_indices");
        }
        if (sequences == 0) {
            out_head_page_starts[0] = 0;
            return;
        }

        inf_page_select_params params{};
        params.layer = kv.kv_layer(layer);
        params.sequences = sequences;
        params.q_heads = sel.q_heads;
        params.q_dtype = static_cast<inf_dtype>(q_dtype);
        params.budget_pages = budget_pages;
        params.per_query_head = sel.per_query_head;
        params.q = q_buffer->data();

        Backend& backend = device.backend();
        const std::int32_t ordinal = device.ordinal();
        ScratchLease scratch(kv);
        std::vector<std::int32_t>& ints = scratch->host_ints;
        ints.clear();
        const auto count = [](std::int64_t n) { return static_cast<std::size_t>(n); };
        if (backend.host_accessible()) {
            params.q_rows = sel.q_rows;
            params.kv_lengths = sel.kv_lengths;
            params.page_starts = sel.page_starts;
            params.page_ids = sel.page_ids;
            params.page_positions = sel.page_positions;
            if (sel.page_positions == nullptr) {
                api::pack_default_positions(ints, sel.page_starts, sequences, config.page_size);
                params.page_positions = ints.data();
            }
            params.head_page_starts = out_head_page_starts;
            params.head_page_indices = out_head_page_indices;
            api::attach_workspace(*scratch, device, backend.page_select_workspace_bytes(ordinal, params), params);
            backend.page_select(ordinal, params);
            return;
        }
        const std::size_t q_rows = api::pack(ints, sel.q_rows, count(sequences));
        const std::size_t kv_lengths = api::pack(ints, sel.kv_lengths, count(sequences));
        const std::size_t page_starts = api::pack(ints, sel.page_starts, count(sequences + 1));
        const std::size_t page_ids = entries > 0 ? api::pack(ints, sel.page_ids, count(entries)) : ints.size();
        std::size_t page_positions = ints.size();
        if (sel.page_positions != nullptr) {
            page_positions = entries > 0 ? api::pack(ints, sel.page_positions, count(entries)) : ints.size();
        } else {
            page_positions = api::pack_default_positions(ints, sel.page_starts, sequences, config.page_size);
        }
        const std::size_t out_starts = api::reserve_ints(ints, count(lists + 1));
        const std::size_t out_indices = api::reserve_ints(ints, count(std::max<std::int64_t>(needed, 1)));
        std::int32_t* const base = api::stage_ints(*scratch, device, out_starts);
        params.q_rows = base + q_rows;
        params.kv_lengths = base + kv_lengths;
        params.page_starts = base + page_starts;
        params.page_ids = base + page_ids;
        params.page_positions = base + page_positions;
        params.head_page_starts = base + out_starts;
        params.head_page_indices = base + out_indices;
        api::attach_workspace(*scratch, device, backend.page_select_workspace_bytes(ordinal, params), params);
        backend.page_select(ordinal, params);
        backend.copy_to_host(ordinal, out_head_page_starts, base + out_starts, count(lists + 1) * sizeof(std::int32_t));
        if (needed > 0) {
            backend.copy_to_host(ordinal, out_head_page_indices, base + out_indices, count(needed) * sizeof(std::int32_t));
        }
    });
}

}  // extern "C"
