// Exports: MicroAttention over a page pool, and the merge of partial results.
//
// Everything the kernels will index is validated here, on the host, before any kernel runs
// (attention_params.h: kernels trust the core). Then the kernel parameters are built:
//  - a host_accessible() backend (the CPU) gets the caller's arrays directly; only arrays the core
//    builds itself (default page_positions) go into the call's scratch set;
//  - any other backend gets every int array packed into one host block (the scratch set's host_ints),
//    copied to the device in one copy (its device_ints);
//  - the split-KV workspace is the scratch set's workspace, grown to attention_workspace_bytes.
// Scratch sets belong to the pool (PoolScratch in kv/page_pool.h): each call leases one, so concurrent
// calls on one pool do not wait for each other, and once the sizes have been seen nothing is allocated.
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "api/batch_checks.h"
#include "api/checks.h"
#include "kv/dtype.h"
#include "kv/page_pool.h"

using namespace inf;

namespace {

using api::check_same_device;

void require_array(const void* pointer, const char* field) { api::require_array(pointer, "batch->", field); }

void check_size(const Buffer& buffer, const char* argument, std::uint64_t needed, const char* formula) {
    if (buffer.size() < needed) {
        fail(INF_STATUS_OUT_OF_RANGE, argument, " holds ", buffer.size(), " bytes but needs ", needed, " (", formula,
             ")");
    }
}

std::int64_t check_prefix(const std::int32_t* starts, std::int64_t count, const char* field) {
    return api::check_prefix(starts, count, "batch->", field);
}

}  // namespace

extern "C" {

INF_API inf_status inf_attention_run(inf_page_pool* pool, int32_t layer, const inf_attention_batch* batch,
                                     const inf_buffer* q, inf_buffer* o, inf_buffer* lse) {
    return guard("inf_attention_run", [&] {
        const auto object = api::find_pool(pool, "pool");
        const PagePool& kv = *object;
        kv.check_layer(layer);
        kv.check_layer_heads(layer);
        // The layer's own head count (config.layer_kv_heads) is the kv_heads every check below sees.
        inf_page_pool_config config = kv.config();
        config.kv_heads = kv.layer_heads(layer);
        // Callers built before the sparse fields (head_lists_per_query_head onwards) pass a smaller size:
        // those fields then read as 0 / null (per-KV-head lists, every head dense).
        const inf_attention_batch b = api::read_versioned(batch, "batch", "inf_attention_batch",
                                                          offsetof(inf_attention_batch, head_lists_per_query_head));
        const auto q_buffer = api::find_buffer(q, "q");
        const auto o_buffer = api::find_buffer(o, "o");
        const auto lse_buffer = api::find_buffer(lse, "lse");
        const Device& device = kv.device();
        check_same_device(*q_buffer, "q", device, "the pool");
        check_same_device(*o_buffer, "o", device, "the pool");
        check_same_device(*lse_buffer, "lse", device, "the pool");
        if (o_buffer == q_buffer) fail(INF_STATUS_INVALID_ARGUMENT, "o and q are the same buffer");
        if (lse_buffer == q_buffer) fail(INF_STATUS_INVALID_ARGUMENT, "lse and q are the same buffer");
        if (lse_buffer == o_buffer) fail(INF_STATUS_INVALID_ARGUMENT, "lse and o are the same buffer");

        // Scalars.
        const std::int32_t sequences = b.sequences;
        const std::int32_t q_dtype = api::check_queries("batch", sequences, b.q_heads, raw_enum(b.q_dtype), config);
        if (!std::isfinite(b.scale) || b.scale < 0.0F) {
            fail(INF_STATUS_INVALID_ARGUMENT, "batch->scale (", b.scale,
                 ") must be finite and >= 0 (0: 1/sqrt(head_dim))");
        }

        if (b.head_lists_per_query_head != 0 && b.head_lists_per_query_head != 1) {
            fail(INF_STATUS_INVALID_ARGUMENT, "batch->head_lists_per_query_head (", b.head_lists_per_query_head,
                 ") must be 0 (one list per KV head) or 1 (one list per query head)");
        }
        bool any_streaming = false;
        if (b.streaming_heads != nullptr) {
            for (std::int32_t h = 0; h < config.kv_heads; ++h) {
                if (b.streaming_heads[h] != 0 && b.streaming_heads[h] != 1) {
                    fail(INF_STATUS_INVALID_ARGUMENT, "batch->streaming_heads[", h, "] (", b.streaming_heads[h],
                         ") must be 0 (dense) or 1 (streaming)");
                }
                any_streaming = any_streaming || b.streaming_heads[h] != 0;
            }
        }
        if (b.sink_tokens < 0) {
            fail(INF_STATUS_INVALID_ARGUMENT, "batch->sink_tokens (", b.sink_tokens, ") must be >= 0");
        }
        if (b.local_tokens < 0 || (any_streaming && b.local_tokens < 1)) {
            fail(INF_STATUS_INVALID_ARGUMENT, "batch->local_tokens (", b.local_tokens, ") must be >= 1",
                 any_streaming ? " when batch->streaming_heads marks a streaming head" : " (or 0 without streaming heads)");
        }

        // Arrays, in the order of the struct.
        std::int64_t total_q = 0;
        std::int64_t max_q = 0;
        std::int64_t entries = 0;
        std::int64_t max_entries = 0;
        const std::int32_t lists_per_sequence = b.head_lists_per_query_head != 0 ? b.q_heads : config.kv_heads;
        const std::int64_t head_lists = std::int64_t{sequences} * lists_per_sequence;
        if (sequences > 0) {
            require_array(b.q_starts, "q_starts");
            max_q = check_prefix(b.q_starts, sequences, "q_starts");
            total_q = b.q_starts[sequences];
            if (total_q > 0) {
                require_array(b.q_positions, "q_positions");
            }
            for (std::int64_t i = 0; i < total_q; ++i) {
                if (b.q_positions[i] < 0) {
                    fail(INF_STATUS_INVALID_ARGUMENT, "batch->q_positions[", i, "] (", b.q_positions[i], ") must be >= 0");
                }
            }
            const api::PageTableShape table = api::check_page_table(
                {b.kv_lengths, b.page_starts, b.page_ids, b.page_positions}, sequences, config, "batch->");
            entries = table.entries;
            max_entries = table.widest;
            if (b.head_page_starts != nullptr) {
                max_entries = check_prefix(b.head_page_starts, head_lists, "head_page_starts");
                const std::int64_t indices = b.head_page_starts[head_lists];
                if (indices > 0) {
                    require_array(b.head_page_indices, "head_page_indices");
                }
                for (std::int32_t s = 0; s < sequences; ++s) {
                    const std::int32_t count = b.page_starts[s + 1] - b.page_starts[s];
                    const std::int64_t first = b.head_page_starts[std::int64_t{s} * lists_per_sequence];
                    const std::int64_t end = b.head_page_starts[std::int64_t{s + 1} * lists_per_sequence];
                    for (std::int64_t i = first; i < end; ++i) {
                        if (b.head_page_indices[i] < 0 || b.head_page_indices[i] >= count) {
                            fail(INF_STATUS_OUT_OF_RANGE, "batch->head_page_indices[", i, "] (", b.head_page_indices[i],
                                 ") is out of range: sequence ", s, " has ", count, count == 1 ? " entry" : " entries");
                        }
                    }
                }
            } else if (b.head_page_indices != nullptr) {
                fail(INF_STATUS_INVALID_ARGUMENT, "batch->head_page_indices is given but batch->head_page_starts is null");
            }
        }

        // Buffer sizes (products of int32 values and head_dim <= 256: no overflow in 64 bits).
        const std::uint64_t row = static_cast<std::uint64_t>(total_q) * static_cast<std::uint64_t>(b.q_heads) *
                                  static_cast<std::uint64_t>(config.head_dim);
        check_size(*q_buffer, "q", row * element_size(static_cast<inf_dtype>(q_dtype)),
                   "total_q * q_heads * head_dim * sizeof(q_dtype)");
        check_size(*o_buffer, "o", row * sizeof(float), "total_q * q_heads * head_dim * 4");
        check_size(*lse_buffer, "lse", static_cast<std::uint64_t>(total_q) * static_cast<std::uint64_t>(b.q_heads) * sizeof(float),
                   "total_q * q_heads * 4");
        if (total_q == 0) {
            return;  // no query row: nothing to compute
        }

        inf_attention_params params{};
        params.layer = kv.kv_layer(layer);
        params.sequences = sequences;
        params.q_heads = b.q_heads;
        params.total_q = static_cast<std::int32_t>(total_q);
        params.max_q = static_cast<std::int32_t>(max_q);
        params.max_entries = static_cast<std::int32_t>(max_entries);
        params.scale = b.scale == 0.0F ? 1.0F / std::sqrt(static_cast<float>(config.head_dim)) : b.scale;
        params.q_dtype = static_cast<inf_dtype>(q_dtype);
        params.q = q_buffer->data();
        params.o = static_cast<float*>(o_buffer->data());
        params.lse = static_cast<float*>(lse_buffer->data());
        params.head_lists_per_query_head = b.head_page_starts != nullptr ? b.head_lists_per_query_head : 0;
        params.sink_tokens = any_streaming ? b.sink_tokens : 0;
        params.local_tokens = any_streaming ? b.local_tokens : 0;

        Backend& backend = device.backend();
        const std::int32_t ordinal = device.ordinal();
        ScratchLease scratch(kv);
        std::vector<std::int32_t>& ints = scratch->host_ints;
        ints.clear();
        const auto count = [](std::int64_t n) { return static_cast<std::size_t>(n); };
        if (backend.host_accessible()) {
            params.q_starts = b.q_starts;
            params.q_positions = b.q_positions;
            params.kv_lengths = b.kv_lengths;
            params.page_starts = b.page_starts;
            params.page_ids = b.page_ids;
            params.page_positions = b.page_positions;
            params.head_page_starts = b.head_page_starts;
            params.head_page_indices = b.head_page_indices;
            params.streaming_heads = any_streaming ? b.streaming_heads : nullptr;
            if (b.page_positions == nullptr) {
                api::pack_default_positions(ints, b.page_starts, sequences, config.page_size);
                params.page_positions = ints.data();
            }
        } else {
            const std::size_t q_starts = api::pack(ints, b.q_starts, count(sequences + 1));
            const std::size_t q_positions = api::pack(ints, b.q_positions, count(total_q));
            const std::size_t kv_lengths = api::pack(ints, b.kv_lengths, count(sequences));
            const std::size_t page_starts = api::pack(ints, b.page_starts, count(sequences + 1));
            const std::size_t page_ids = api::pack(ints, b.page_ids, count(entries));
            const std::size_t page_positions =
                b.page_positions != nullptr ? api::pack(ints, b.page_positions, count(entries))
                                            : api::pack_default_positions(ints, b.page_starts, sequences, config.page_size);
            std::size_t head_starts = 0;
            std::size_t head_indices = 0;
            if (b.head_page_starts != nullptr) {
                head_starts = api::pack(ints, b.head_page_starts, count(head_lists + 1));
                const std::int64_t indices = b.head_page_starts[head_lists];
                head_indices = indices > 0 ? api::pack(ints, b.head_page_indices, count(indices)) : ints.size();
            }
            const std::size_t streaming = any_streaming ? api::pack(ints, b.streaming_heads, count(config.kv_heads)) : 0;
            std::int32_t* base = api::stage_ints(*scratch, device, ints.size());
            params.q_starts = base + q_starts;
            params.q_positions = base + q_positions;
            params.kv_lengths = base + kv_lengths;
            params.page_starts = base + page_starts;
            params.page_ids = base + page_ids;
            params.page_positions = base + page_positions;
            params.head_page_starts = b.head_page_starts != nullptr ? base + head_starts : nullptr;
            params.head_page_indices = b.head_page_starts != nullptr ? base + head_indices : nullptr;
            params.streaming_heads = any_streaming ? base + streaming : nullptr;
        }
        const std::uint64_t workspace = backend.attention_workspace_bytes(ordinal, params);
        api::attach_workspace(*scratch, device, workspace, params);
        backend.attention(ordinal, params);
    });
}

INF_API inf_status inf_attention_merge(int32_t parts, const inf_buffer* const* o_parts,
                                       const inf_buffer* const* lse_parts, int64_t rows, int32_t head_dim,
                                       inf_buffer* o_out, inf_buffer* lse_out) {
    return guard("inf_attention_merge", [&] {
        if (parts < 1) {
            fail(INF_STATUS_INVALID_ARGUMENT, "parts (", parts, ") must be at least 1");
        }
        api::require_pointer(o_parts, "o_parts");
        api::require_pointer(lse_parts, "lse_parts");
        if (rows < 0) {
            fail(INF_STATUS_INVALID_ARGUMENT, "rows (", rows, ") must be >= 0");
        }
        if (head_dim <= 0) {
            fail(INF_STATUS_INVALID_ARGUMENT, "head_dim (", head_dim, ") must be at least 1");
        }
        const auto o_target = api::find_buffer(o_out, "o_out");
        const auto lse_target = api::find_buffer(lse_out, "lse_out");
        if (o_target == lse_target) fail(INF_STATUS_INVALID_ARGUMENT, "lse_out and o_out are the same buffer");
        const Device& device = o_target->device();
        check_same_device(*lse_target, "lse_out", device, "o_out");
        const std::uint64_t o_bytes = checked_mul(checked_mul(static_cast<std::uint64_t>(rows),
                                                              static_cast<std::uint64_t>(head_dim), "rows * head_dim"),
                                                  sizeof(float), "rows * head_dim * 4");
        const std::uint64_t lse_bytes = static_cast<std::uint64_t>(rows) * sizeof(float);
        check_size(*o_target, "o_out", o_bytes, "rows * head_dim * 4");
        check_size(*lse_target, "lse_out", lse_bytes, "rows * 4");

        // Per-thread lists reused across calls (merge runs per layer per step: no allocation once the
        // largest part count was seen). held keeps every part alive during the call and is emptied on
        // the way out, so no buffer outlives its handle because of it.
        thread_local std::vector<std::shared_ptr<Buffer>> held;
        thread_local std::vector<const float*> pointers;
        struct Release {
            ~Release() { held.clear(); }
        } release;
        held.clear();
        pointers.assign(static_cast<std::size_t>(parts) * 2, nullptr);
        for (std::int32_t i = 0; i < parts; ++i) {
            const std::string o_name = "o_parts[" + std::to_string(i) + "]";
            const std::string lse_name = "lse_parts[" + std::to_string(i) + "]";
            auto o_part = api::find_buffer(o_parts[i], o_name.c_str());
            auto lse_part = api::find_buffer(lse_parts[i], lse_name.c_str());
            check_same_device(*o_part, o_name.c_str(), device, "o_out");
            check_same_device(*lse_part, lse_name.c_str(), device, "o_out");
            check_size(*o_part, o_name.c_str(), o_bytes, "rows * head_dim * 4");
            check_size(*lse_part, lse_name.c_str(), lse_bytes, "rows * 4");
            if (i > 0 && o_part == o_target) {
                fail(INF_STATUS_INVALID_ARGUMENT, "o_out is ", o_name, ": only o_parts[0] may be the output");
            }
            if (i > 0 && lse_part == lse_target) {
                fail(INF_STATUS_INVALID_ARGUMENT, "lse_out is ", lse_name, ": only lse_parts[0] may be the output");
            }
            if (o_part == lse_part || o_part == lse_target || lse_part == o_target) {
                fail(INF_STATUS_INVALID_ARGUMENT, o_name, " and ", lse_name,
                     " overlap each other or the other output: o and lse must be separate buffers");
            }
            pointers[static_cast<std::size_t>(i)] = static_cast<const float*>(o_part->data());
            pointers[static_cast<std::size_t>(parts + i)] = static_cast<const float*>(lse_part->data());
            held.push_back(std::move(o_part));
            held.push_back(std::move(lse_part));
        }
        if (rows == 0) {
            return;
        }
        inf_attention_merge_params params{};
        params.parts = parts;
        params.rows = rows;
        params.head_dim = head_dim;
        params.o_parts = pointers.data();
        params.lse_parts = pointers.data() + parts;
        params.o_out = static_cast<float*>(o_target->data());
        params.lse_out = static_cast<float*>(lse_target->data());
        device.backend().attention_merge(device.ordinal(), params);
    });
}

}  // extern "C"
