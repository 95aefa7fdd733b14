// Checks and staging shared by the exports that take a batch of sequences over a page pool
// (inf_attention_run's inf_attention_batch, inf_page_select's inf_page_selection). Each check throws
// inf::Error naming the field as "<prefix><field>", where prefix is the struct argument ("batch->",
// "selection->"); guard() adds the function name in front.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "api/checks.h"
#include "kv/dtype.h"
#include "kv/page_pool.h"

namespace inf::api {

inline std::shared_ptr<PagePool> find_pool(const inf_page_pool* handle, const char* argument) {
    return find_handle<PagePool>(handle, HandleKind::page_pool, argument);
}

// argument lives on the same device as owner (device), or DEVICE_MISMATCH.
inline void check_same_device(const Buffer& buffer, const char* argument, const Device& device, const char* owner) {
    if (!buffer.device().same_device(device)) {
        fail(INF_STATUS_DEVICE_MISMATCH, argument, " lives on ", buffer.device().label(), " but ", owner, " on ",
             device.label());
    }
}

// A field of the batch struct that must not be null.
inline void require_array(const void* pointer, const char* prefix, const char* field) {
    if (pointer == nullptr) {
        fail(INF_STATUS_NULL_POINTER, prefix, field, " is null");
    }
}

// A prefix array: starts[0] == 0, non-decreasing over count + 1 entries. Returns the largest step.
inline std::int64_t check_prefix(const std::int32_t* starts, std::int64_t count, const char* prefix,
                                 const char* field) {
    if (starts[0] != 0) {
        fail(INF_STATUS_INVALID_ARGUMENT, prefix, field, "[0] (", starts[0], ") must be 0");
    }
    std::int64_t widest = 0;
    for (std::int64_t i = 0; i < count; ++i) {
        if (starts[i + 1] < starts[i]) {
            fail(INF_STATUS_INVALID_ARGUMENT, prefix, field, "[", i + 1, "] (", starts[i + 1], ") is less than ",
                 prefix, field, "[", i, "] (", starts[i], "): ", field, " must be non-decreasing");
        }
        widest = std::max<std::int64_t>(widest, std::int64_t{starts[i + 1]} - starts[i]);
    }
    return widest;
}

// The page table of a batch of sequences, as the struct gives it (page_positions may be null).
struct PageTable {
    const std::int32_t* kv_lengths;
    const std::int32_t* page_starts;
    const std::int32_t* page_ids;
    const std::int32_t* page_positions;
};

// What check_page_table learned: entries = page_starts[sequences], widest = the most entries of one sequence.
struct PageTableShape {
    std::int64_t entries = 0;
    std::int64_t widest = 0;
};

// Checks, in this order, for sequences > 0: kv_lengths (non-null, >= 0), page_starts (non-null prefix
// array), page_ids (non-null when there are entries, each a page of the pool), then page_positions
// (each a start whose page of keys fits int32 positions) or, without them, the default positions
// (entry j - page_starts[s] holds keys from (j - page_starts[s]) * page_size: each sequence's keys fit
// int32 positions and kv_lengths[s] fits its entries).
inline PageTableShape check_page_table(const PageTable& table, std::int32_t sequences,
                                       const inf_page_pool_config& config, const char* prefix) {
    PageTableShape shape;
    require_array(table.kv_lengths, prefix, "kv_lengths");
    for (std::int32_t s = 0; s < sequences; ++s) {
        if (table.kv_lengths[s] < 0) {
            fail(INF_STATUS_INVALID_ARGUMENT, prefix, "kv_lengths[", s, "] (", table.kv_lengths[s], ") must be >= 0");
        }
    }
    require_array(table.page_starts, prefix, "page_starts");
    shape.widest = check_prefix(table.page_starts, sequences, prefix, "page_starts");
    shape.entries = table.page_starts[sequences];
    if (shape.entries > 0) {
        require_array(table.page_ids, prefix, "page_ids");
    }
    for (std::int64_t j = 0; j < shape.entries; ++j) {
        if (table.page_ids[j] < 0 || table.page_ids[j] >= config.pages) {
            fail(INF_STATUS_OUT_OF_RANGE, prefix, "page_ids[", j, "] (", table.page_ids[j],
                 ") is out of range: the pool has ", config.pages, config.pages == 1 ? " page" : " pages");
        }
    }
    if (table.page_positions != nullptr) {
        // Key positions page_positions[j] + t, t < page_size, must be valid int32 positions.
        const std::int32_t last = std::numeric_limits<std::int32_t>::max() - config.page_size + 1;
        for (std::int64_t j = 0; j < shape.entries; ++j) {
            if (table.page_positions[j] < 0 || table.page_positions[j] > last) {
                fail(INF_STATUS_OUT_OF_RANGE, prefix, "page_positions[", j, "] (", table.page_positions[j],
                     ") must be from 0 to ", last, " (a page of ", config.page_size,
                     " keys starting there must fit int32 positions)");
            }
        }
    } else {
        // Default positions: a sequence then cannot reference keys beyond its entries.
        for (std::int32_t s = 0; s < sequences; ++s) {
            const std::int64_t count = std::int64_t{table.page_starts[s + 1]} - table.page_starts[s];
            const std::int64_t held = count * config.page_size;
            if (held > std::numeric_limits<std::int32_t>::max()) {
                fail(INF_STATUS_OUT_OF_RANGE, "sequence ", s, " has ", count, " entries of ", config.page_size,
                     " keys: positions beyond int32");
            }
            if (table.kv_lengths[s] > held) {
                fail(INF_STATUS_OUT_OF_RANGE, prefix, "kv_lengths[", s, "] (", table.kv_lengths[s], ") exceeds the ",
                     held, " keys of the ", count, " entries of sequence ", s,
                     " (give page_positions when entries hold other positions)");
            }
        }
    }
    return shape;
}

// Int blocks staged to the device: each array starts on a 128-byte boundary (32 ints).
inline void pad_ints(std::vector<std::int32_t>& block) { block.resize((block.size() + 31) / 32 * 32, 0); }

// Appends count ints at source to block, padded; returns their offset.
inline std::size_t pack(std::vector<std::int32_t>& block, const std::int32_t* source, std::size_t count) {
    const std::size_t offset = block.size();
    block.insert(block.end(), source, source + count);
    pad_ints(block);
    return offset;
}

// Reserves count zero ints at the end of block (an output the device writes), padded; returns their offset.
inline std::size_t reserve_ints(std::vector<std::int32_t>& block, std::size_t count) {
    const std::size_t offset = block.size();
    block.resize((offset + count + 31) / 32 * 32, 0);
    return offset;
}

// Appends the default page_positions ((j - page_starts[s]) * page_size for entry j of sequence s),
// padded; returns their offset.
inline std::size_t pack_default_positions(std::vector<std::int32_t>& block, const std::int32_t* page_starts,
                                          std::int32_t sequences, std::int32_t page_size) {
    const std::size_t offset = block.size();
    for (std::int32_t s = 0; s < sequences; ++s) {
        for (std::int32_t j = page_starts[s]; j < page_starts[s + 1]; ++j) {
            block.push_back((j - page_starts[s]) * page_size);
        }
    }
    pad_ints(block);
    return offset;
}

// Grows scratch.device_ints to hold all of scratch.host_ints and copies the first copied ints there
// (the rest are outputs the device writes); returns the device block.
inline std::int32_t* stage_ints(PoolScratch& scratch, const Device& device, std::size_t copied) {
    const std::vector<std::int32_t>& ints = scratch.host_ints;
    scratch.device_ints.reserve(device, ints.size() * sizeof(std::int32_t));
    auto* base = static_cast<std::int32_t*>(scratch.device_ints.data());
    device.backend().copy_from_host(device.ordinal(), base, ints.data(), copied * sizeof(std::int32_t));
    return base;
}

// Grows scratch.workspace to bytes and points params.workspace / workspace_bytes at it (null / 0 when
// the backend needs none).
template <class Params>
void attach_workspace(PoolScratch& scratch, const Device& device, std::uint64_t bytes, Params& params) {
    scratch.workspace.reserve(device, bytes);
    params.workspace = bytes == 0 ? nullptr : scratch.workspace.data();
    params.workspace_bytes = bytes == 0 ? 0 : scratch.workspace.size();
}

// The query side shared by inf_attention_run and inf_page_select: sequences >= 0, q_heads a positive multiple
// of the pool's kv_heads, q_dtype F32 or the pool's dtype (F32 only for int8 pools). `owner` is the struct
// argument's name ("batch", "selection") for the messages. Returns the raw q_dtype.
inline std::int32_t check_queries(const char* owner, std::int32_t sequences, std::int32_t q_heads,
                                  std::int32_t q_dtype, const inf_page_pool_config& config) {
    if (sequences < 0) {
        fail(INF_STATUS_INVALID_ARGUMENT, owner, "->sequences (", sequences, ") must be >= 0");
    }
    if (q_heads <= 0 || q_heads % config.kv_heads != 0) {
        fail(INF_STATUS_INVALID_ARGUMENT, owner, "->q_heads (", q_heads,
             ") must be a positive multiple of the pool's kv_heads (", config.kv_heads, ")");
    }
    if (config.dtype == INF_DTYPE_I8 && q_dtype != INF_DTYPE_F32) {
        // int8 codes need a per-row scale, which a query array does not carry.
        fail(INF_STATUS_INVALID_ARGUMENT, owner, "->q_dtype (", q_dtype,
             ") must be INF_DTYPE_F32 (0) for a pool of dtype INF_DTYPE_I8 (queries are not quantised)");
    }
    if (q_dtype != INF_DTYPE_F32 && q_dtype != config.dtype) {
        fail(INF_STATUS_INVALID_ARGUMENT, owner, "->q_dtype (", q_dtype, ") must be INF_DTYPE_F32 (0) or the pool's dtype (",
             static_cast<int>(config.dtype), ", ", dtype_name(config.dtype), ")");
    }
    return q_dtype;
}

}  // namespace inf::api
