// The object behind inf_page_pool: a paged KV cache of one model shape on one device.
//
// Layout (attention_params.h): one allocation made at creation holds, for every layer, K and V
// [pages][heads of the layer][page_size][head_dim] of dtype (heads: config.layer_kv_heads[l], or kv_heads), then (when logical_page_size > 0) the summaries
// [pages][kv_heads][page_size / logical_page_size][2][head_dim] as float32, bfloat16 or int8 codes plus a
// scale per (logical page, head) (config.summary_bits; the byte layout is inf_kv_layer's):
//
//   [K layer 0 .. K layer L-1][V layer 0 .. V layer L-1]([K scales 0 .. L-1][V scales 0 .. L-1])[summary 0 .. L-1]
//
// The scales exist for INF_DTYPE_I8 only: K and V then hold int8 codes and each row (token, head) has a
// float32 scale, [pages][kv_heads][page_size] per layer (inf_kv_layer.k_scale / v_scale). Kept apart from
// the codes, not interleaved, so a row of codes stays a plain aligned run for the vector loads.
//
// Nothing is allocated on the hot path except scratch that grows to the largest call seen (see
// Scratch). Like a buffer, a pool shares ownership of its device. Every method validates its
// arguments and throws inf::Error naming them; the exports add the function name.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "attention/attention_params.h"
#include "core/device.h"
#include "infinite/infinite.h"

namespace inf {

// Memory on one device that the core owns (not a handle). Move-only; freed on destruction.
class DeviceMemory {
public:
    DeviceMemory() = default;
    DeviceMemory(const Device& device, std::uint64_t bytes);
    ~DeviceMemory() { release(); }
    DeviceMemory(DeviceMemory&& other) noexcept;
    DeviceMemory& operator=(DeviceMemory&& other) noexcept;
    DeviceMemory(const DeviceMemory&) = delete;
    DeviceMemory& operator=(const DeviceMemory&) = delete;

    void* data() const noexcept { return data_; }
    std::uint64_t size() const noexcept { return size_; }

    // Makes size() >= bytes: reallocates (contents lost) only when the current block is smaller, never
    // shrinks. A no-op for bytes == 0.
    void reserve(const Device& device, std::uint64_t bytes);

private:
    void release() noexcept;

    Backend* backend_ = nullptr;
    std::int32_t ordinal_ = 0;
    void* data_ = nullptr;
    std::uint64_t size_ = 0;
};

// Scratch of one call on a pool. Pools keep a free list of these: a call takes one (or makes one when
// all are in use by concurrent calls), and gives it back when it returns. So concurrent calls on one
// pool never wait for each other, and in the steady state (same or smaller sizes) no call allocates.
// A set's memory only grows, to the largest call that used it.
struct PoolScratch {
    std::vector<std::int32_t> host_ints;  // host int arrays built by the core (default page_positions, ...)
    DeviceMemory device_ints;             // non-host backends: int arrays staged to the device
    DeviceMemory staging;                 // non-host backends: append's k and v staged to the device
    DeviceMemory workspace;               // attention workspace (backend.attention_workspace_bytes)
};

class PagePool {
public:
    // Throws INVALID_ARGUMENT naming the field (as "config-><field>") when config is not a valid
    // shape, OUT_OF_RANGE when its byte size overflows.
    static void validate(const inf_page_pool_config& config);

    // Reserves every byte at once (OUT_OF_MEMORY naming the bytes and the device when it does not
    // fit), zeroes K and V and sets every summary to min = +inf, max = -inf. config must be valid.
    PagePool(std::shared_ptr<Device> device, const inf_page_pool_config& config);
    ~PagePool();
    PagePool(const PagePool&) = delete;
    PagePool& operator=(const PagePool&) = delete;

    const Device& device() const noexcept { return *device_; }
    const inf_page_pool_config& config() const noexcept { return config_; }
    // Bytes of device memory for K, V and summaries, all layers.
    std::uint64_t bytes() const noexcept { return bytes_; }

    // KV heads layer layer stores (config.layer_kv_heads[layer], or kv_heads); layer must be valid.
    std::int32_t layer_heads(std::int32_t layer) const noexcept { return layer_heads_[static_cast<std::size_t>(layer)]; }
    // Whether some layer stores fewer heads than kv_heads (config.layer_kv_heads).
    bool per_layer_heads() const noexcept { return per_layer_heads_; }
    // Elements of K (or V) in one page of layer: layer_heads(layer) * page_size * head_dim.
    std::uint64_t page_elements(std::int32_t layer) const noexcept {
        return head_page_elements_ * static_cast<std::uint64_t>(layer_heads(layer));
    }
    // Floats of one page's summary of layer as read_summary returns it (0 without summaries).
    std::uint64_t summary_page_floats(std::int32_t layer) const noexcept {
        return head_summary_floats_ * static_cast<std::uint64_t>(layer_heads(layer));
    }
    // Bits per stored summary value: 32, 16 or 8 (config.summary_bits, 0 read as 32).
    std::int32_t summary_bits() const noexcept { return summary_bits_; }
    // Bytes of one page's stored summary of layer (0 without summaries).
    std::uint64_t summary_page_bytes(std::int32_t layer) const noexcept {
        return head_summary_bytes_ * static_cast<std::uint64_t>(layer_heads(layer));
    }

    // Layer layer (must be valid) as the kernels see it.
    inf_kv_layer kv_layer(std::int32_t layer) const noexcept;

    // Throws OUT_OF_RANGE naming argument unless 0 <= layer < layers (page: < pages).
    void check_layer(std::int32_t layer, const char* argument = "layer") const;
    void check_page(std::int32_t page, const char* argument) const;
    // Throws INVALID_ARGUMENT naming the layer when it stores no heads (config.layer_kv_heads[layer] == 0).
    void check_layer_heads(std::int32_t layer) const;

    // inf_page_pool_append / read_page / read_summary, arguments checked here.
    void append(std::int32_t layer, std::int32_t tokens, const std::int32_t* pages, const std::int32_t* slots,
                const float* k, const float* v);
    void read_page(std::int32_t layer, std::int32_t page, float* k_out, float* v_out) const;
    void read_summary(std::int32_t layer, std::int32_t page, float* summary_out) const;

    // inf_page_pool_copy_pages, arguments checked here.
    static void copy_pages(PagePool& dst, const std::int32_t* dst_pages, const PagePool& src,
                           const std::int32_t* src_pages, std::int32_t count);

    // Page migration (inf_page_pool_send_pages / recv_pages): count pages, every layer's K, V, int8 scales
    // and stored summaries, as one message behind a header with the pool's shape (PageMessageHeader), so the
    // receiver refuses a pool of another shape naming the first field that differs. pages[i] is checked
    // against this pool (OUT_OF_RANGE naming "pages[i]"); count 0 is a header alone.
    void pack_pages(const std::int32_t* pages, std::int32_t count, std::vector<std::byte>& out) const;
    // The destination checks of unpack_pages alone (count, pages, no repeated page), so a caller can refuse
    // bad arguments before it takes a message.
    void check_unpack_pages(const std::int32_t* pages, std::int32_t count) const;
    // Stores a pack_pages message into pages. INVALID_ARGUMENT naming the field ("dtype", "layers", ...,
    // "count") when the sender's shape differs; PEER_FAILED when the bytes are not such a message.
    void unpack_pages(const std::byte* message, std::uint64_t bytes, const std::int32_t* pages,
                      std::int32_t count);

    // A scratch set for one call; give it back with release_scratch (ScratchLease does both).
    std::unique_ptr<PoolScratch> acquire_scratch() const;
    void release_scratch(std::unique_ptr<PoolScratch> scratch) const noexcept;

private:
    void* k_page(std::int32_t layer, std::int32_t page) const noexcept;
    void* v_page(std::int32_t layer, std::int32_t page) const noexcept;
    // INF_DTYPE_I8: the page's first K (V) row scale.
    float* k_scale_page(std::int32_t layer, std::int32_t page) const noexcept;
    float* v_scale_page(std::int32_t layer, std::int32_t page) const noexcept;
    // count values of storage at element offset element of a K or V region (base: k_ or v_) with their scales
    // (INF_DTYPE_I8) as float32; host-accessible memory only.
    void decode_host(const unsigned char* base, const float* scales, std::uint64_t element, std::uint64_t count,
                     float* out) const noexcept;
    unsigned char* summary_page(std::int32_t layer, std::int32_t page) const noexcept;
    void initialize_summaries();
    // Bytes of one page's K (or V) and of its int8 scales (0 unless INF_DTYPE_I8) in layer: the units of a
    // page message and of a page copy.
    std::uint64_t kv_page_bytes(std::int32_t layer) const noexcept { return page_elements(layer) * element_bytes_; }
    std::uint64_t scale_page_bytes(std::int32_t layer) const noexcept;
    // Start of layer's block in a region whose every (page, head) takes unit bytes: layers are
    // [pages][layer_heads] blocks one after another (head_offset_ is the heads of the layers before, per page).
    std::uint64_t layer_offset(std::int32_t layer, std::uint64_t unit) const noexcept {
        return head_offset_[static_cast<std::size_t>(layer)] * static_cast<std::uint64_t>(config_.pages) * unit;
    }
    // UNSUPPORTED naming pool (the argument) for a pool with per-layer head counts: page messages carry one.
    void refuse_per_layer_migration(const char* pool) const;
    // Host <-> pool memory for page messages (plain copies on a host backend).
    void pool_to_host(void* host, const void* pool_memory, std::uint64_t bytes) const;
    void host_to_pool(void* pool_memory, const void* host, std::uint64_t bytes) const;
    // Widens (or restarts) the compact summaries of the logical pages an append on a host backend wrote,
    // from the keys as stored; the kernel itself keeps only float32 summaries.
    void update_compact_summaries(std::int32_t layer, std::int32_t tokens, const std::int32_t* pages,
                                  const std::int32_t* slots, PoolScratch& scratch);

    std::shared_ptr<Device> device_;
    inf_page_pool_config config_;
    std::uint32_t element_bytes_ = 0;
    // Heads per layer (config_.layer_kv_heads points at this copy) and, per layer, the heads of the layers
    // before it ([layers + 1]); per_layer_heads_: some layer keeps fewer than kv_heads.
    std::vector<std::int32_t> layer_heads_;
    std::vector<std::uint64_t> head_offset_;
    bool per_layer_heads_ = false;
    // Per (page, head): elements of K (or V), floats of the summary as read, bytes of the stored summary.
    std::uint64_t head_page_elements_ = 0;
    std::uint64_t head_summary_floats_ = 0;
    std::uint64_t head_summary_bytes_ = 0;
    std::int32_t summary_bits_ = 32;
    std::uint64_t bytes_ = 0;
    void* data_ = nullptr;
    unsigned char* k_ = nullptr;
    unsigned char* v_ = nullptr;
    float* k_scale_ = nullptr;  // INF_DTYPE_I8 only
    float* v_scale_ = nullptr;
    unsigned char* summary_ = nullptr;

    mutable std::mutex scratch_mutex_;
    mutable std::vector<std::unique_ptr<PoolScratch>> free_scratch_;
};

// Takes a scratch set from a pool for the life of one call.
class ScratchLease {
public:
    explicit ScratchLease(const PagePool& pool) : pool_(pool), scratch_(pool.acquire_scratch()) {}
    ~ScratchLease() { pool_.release_scratch(std::move(scratch_)); }
    ScratchLease(const ScratchLease&) = delete;
    ScratchLease& operator=(const ScratchLease&) = delete;
    PoolScratch& operator*() const noexcept { return *scratch_; }
    PoolScratch* operator->() const noexcept { return scratch_.get(); }

private:
    const PagePool& pool_;
    std::unique_ptr<PoolScratch> scratch_;
};

// Compact summary codecs (inf_kv_layer.summary_bits). Every one rounds outward, so the decoded box
// contains the box it encodes.
// The largest bfloat16 <= x / the smallest bfloat16 >= x (NaN stays NaN).
std::uint16_t bf16_round_down(float x) noexcept;
std::uint16_t bf16_round_up(float x) noexcept;
// Encodes the box lo[d] <= hi[d] (d < dim) as int8 codes (dim min codes, then dim max codes) and one scale:
// value = code * scale with scale >= max(|lo|, |hi|) / 127. An empty box (lo[0] > hi[0]) becomes
// scale = +inf, codes 127 / -127; a box with a non-finite bound becomes [-inf, +inf].
void encode_int8_box(const float* lo, const float* hi, int dim, std::int8_t* codes, float* scale) noexcept;
// Decodes into lo and hi (the inverse view of encode_int8_box).
void decode_int8_box(const std::int8_t* codes, float scale, int dim, float* lo, float* hi) noexcept;

// a * b, or OUT_OF_RANGE "<what> overflows 64 bits" (what describes the product).
std::uint64_t checked_mul(std::uint64_t a, std::uint64_t b, const char* what);

}  // namespace inf
