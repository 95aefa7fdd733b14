#include "kv/page_pool.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

#include "core/log.h"
#include "core/status.h"
#include "kv/dtype.h"

namespace inf {

namespace {

constexpr std::uint64_t kAlignment = 256;

bool is_power_of_two(std::int64_t value) noexcept { return value > 0 && (value & (value - 1)) == 0; }

// Growth for scratch: at least what is asked, and at least 1.5x the old block, so a slowly growing
// workload reallocates O(log n) times.
std::uint64_t grown_size(std::uint64_t current, std::uint64_t needed) noexcept {
    const std::uint64_t grown = current + current / 2;
    return std::max(needed, grown > current ? grown : needed);
}

constexpr float kInf = std::numeric_limits<float>::infinity();

// Bytes of one stored summary value; the int8 form adds a float scale per (logical page, head).
std::uint64_t summary_value_bytes(std::int32_t bits) noexcept { return bits == 8 ? 1 : bits == 16 ? 2 : 4; }

}  // namespace

// ---- compact summary codecs ----------------------------------------------------------------------

std::uint16_t bf16_round_down(float x) noexcept {
    if (x != x) {
        return f32_to_bf16(x);
    }
    std::uint32_t bits = 0;
    std::memcpy(&bits, &x, sizeof bits);
    auto top = static_cast<std::uint16_t>(bits >> 16);  // truncation: toward zero
    if ((bits & 0xFFFFu) != 0 && (bits >> 31) != 0) {
        ++top;  // a negative value truncated upward: one step further from zero (-inf past the last finite)
    }
    return top;
}

std::uint16_t bf16_round_up(float x) noexcept {
    return static_cast<std::uint16_t>(bf16_round_down(-x) ^ 0x8000u);  // up(x) = -down(-x)
}

void encode_int8_box(const float* lo, const float* hi, int dim, std::int8_t* codes, float* scale) noexcept {
    const auto fill = [&](std::int8_t low, std::int8_t high, float value) {
        std::fill_n(codes, dim, low);
        std::fill_n(codes + dim, dim, high);
        *scale = value;
    };
    if (!(lo[0] <= hi[0])) {
        fill(127, -127, kInf);  // empty: decodes to min = +inf, max = -inf
        return;
    }
    float m = 0.0f;
    for (int d = 0; d < dim; ++d) {
        m = std::max({m, std::fabs(lo[d]), std::fabs(hi[d])});
    }
    if (!std::isfinite(m)) {
        fill(-127, 127, kInf);  // an infinite key: the whole line, still a valid bound
        return;
    }
    if (m == 0.0f) {
        fill(0, 0, 0.0f);
        return;
    }
    // 127 * s >= m, so every bound lies within codes -127 .. 127.
    float s = m / 127.0f;
    while (127.0f * s < m) {
        s = std::nextafter(s, kInf);
    }
    // Outward: the first guess from the division, then stepped until code * s (the decoded value, in
    // float32 as decode computes it) is on the right side of the bound.
    for (int d = 0; d < dim; ++d) {
        float c = std::clamp(std::floor(lo[d] / s), -127.0f, 127.0f);
        while (c > -127.0f && c * s > lo[d]) {
            c -= 1.0f;
        }
        codes[d] = static_cast<std::int8_t>(c);
        c = std::clamp(std::ceil(hi[d] / s), -127.0f, 127.0f);
        while (c < 127.0f && c * s < hi[d]) {
            c += 1.0f;
        }
        codes[dim + d] = static_cast<std::int8_t>(c);
    }
    *scale = s;
}

void decode_int8_box(const std::int8_t* codes, float scale, int dim, float* lo, float* hi) noexcept {
    for (int d = 0; d < dim; ++d) {
        lo[d] = static_cast<float>(codes[d]) * scale;
        hi[d] = static_cast<float>(codes[dim + d]) * scale;
    }
}

std::uint64_t checked_mul(std::uint64_t a, std::uint64_t b, const char* what) {
    if (a != 0 && b > std::numeric_limits<std::uint64_t>::max() / a) {
        fail(INF_STATUS_OUT_OF_RANGE, what, " overflows 64 bits");
    }
    return a * b;
}

// ---- DeviceMemory ---------------------------------------------------------------------------------

DeviceMemory::DeviceMemory(const Device& device, std::uint64_t bytes)
    : backend_(&device.backend()), ordinal_(device.ordinal()) {
    if (bytes > 0) {
        data_ = backend_->allocate(ordinal_, bytes);
        size_ = bytes;
    }
}

DeviceMemory::DeviceMemory(DeviceMemory&& other) noexcept
    : backend_(other.backend_), ordinal_(other.ordinal_), data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

DeviceMemory& DeviceMemory::operator=(DeviceMemory&& other) noexcept {
    if (this != &other) {
        release();
        backend_ = other.backend_;
        ordinal_ = other.ordinal_;
        data_ = std::exchange(other.data_, nullptr);
        size_ = std::exchange(other.size_, 0);
    }
    return *this;
}

void DeviceMemory::release() noexcept {
    if (data_ != nullptr) {
        backend_->deallocate(ordinal_, data_, size_);
        data_ = nullptr;
        size_ = 0;
    }
}

void DeviceMemory::reserve(const Device& device, std::uint64_t bytes) {
    if (bytes <= size_) {
        return;
    }
    const std::uint64_t size = grown_size(size_, bytes);
    release();
    backend_ = &device.backend();
    ordinal_ = device.ordinal();
    data_ = backend_->allocate(ordinal_, size);
    size_ = size;
}

// ---- PagePool -------------------------------------------------------------------------------------

void PagePool::validate(const inf_page_pool_config& config) {
    const std::int32_t dtype = raw_enum(config.dtype);
    if (dtype != INF_DTYPE_F32 && dtype != INF_DTYPE_F16 && dtype != INF_DTYPE_BF16 && dtype != INF_DTYPE_I8) {
        fail(INF_STATUS_INVALID_ARGUMENT, "config->dtype (", dtype,
             ") is not an inf_dtype (INF_DTYPE_F32 = 0, INF_DTYPE_F16 = 1, INF_DTYPE_BF16 = 2, INF_DTYPE_I8 = 3)");
    }
    if (config.layers <= 0) {
        fail(INF_STATUS_INVALID_ARGUMENT, "config->layers (", config.layers, ") must be at least 1");
    }
    if (config.kv_heads <= 0) {
        fail(INF_STATUS_INVALID_ARGUMENT, "config->kv_heads (", config.kv_heads, ") must be at least 1");
    }
    if (config.head_dim <= 0 || config.head_dim > 256 || config.head_dim % 8 != 0) {
        fail(INF_STATUS_INVALID_ARGUMENT, "config->head_dim (", config.head_dim,
             ") must be a multiple of 8 from 8 to 256");
    }
    if (!is_power_of_two(config.page_size) || config.page_size < 16 || config.page_size > 256) {
        fail(INF_STATUS_INVALID_ARGUMENT, "config->page_size (", config.page_size,
             ") must be a power of two from 16 to 256");
    }
    if (config.pages <= 0) {
        fail(INF_STATUS_INVALID_ARGUMENT, "config->pages (", config.pages, ") must be at least 1");
    }
    if (config.logical_page_size != 0 &&
        (!is_power_of_two(config.logical_page_size) || config.logical_page_size > config.page_size)) {
        fail(INF_STATUS_INVALID_ARGUMENT, "config->logical_page_size (", config.logical_page_size,
             ") must be 0 (no summaries) or a power of two dividing config->page_size (", config.page_size, ")");
    }
    if (config.summary_bits != 0 && config.summary_bits != 32 && config.summary_bits != 16 && config.summary_bits != 8) {
        fail(INF_STATUS_INVALID_ARGUMENT, "config->summary_bits (", config.summary_bits,
             ") must be 0 or 32 (float32), 16 (bfloat16) or 8 (int8 with a scale)");
    }
    if (config.layer_kv_heads != nullptr) {
        for (std::int32_t l = 0; l < config.layers; ++l) {
            if (config.layer_kv_heads[l] < 0 || config.layer_kv_heads[l] > config.kv_heads) {
                fail(INF_STATUS_INVALID_ARGUMENT, "config->layer_kv_heads[", l, "] (", config.layer_kv_heads[l],
                     ") must be from 0 to config->kv_heads (", config.kv_heads, ")");
            }
        }
        if (std::all_of(config.layer_kv_heads, config.layer_kv_heads + config.layers, [](std::int32_t h) { return h == 0; })) {
            fail(INF_STATUS_INVALID_ARGUMENT, "config->layer_kv_heads is 0 in every layer: a pool stores at least one head");
        }
    }
    // Every product the pool computes, checked once here (with kv_heads in every layer: an upper bound of
    // a pool with per-layer head counts).
    const std::uint64_t element = element_size(static_cast<inf_dtype>(dtype));
    const std::uint64_t page_elements = checked_mul(
        checked_mul(static_cast<std::uint64_t>(config.kv_heads), static_cast<std::uint64_t>(config.page_size),
                    "config->kv_heads * config->page_size"),
        static_cast<std::uint64_t>(config.head_dim), "config->kv_heads * config->page_size * config->head_dim");
    const std::uint64_t layer_elements = checked_mul(page_elements, static_cast<std::uint64_t>(config.pages),
                                                     "elements per layer (kv_heads * page_size * head_dim * pages)");
    const std::uint64_t layer_bytes = checked_mul(layer_elements, element, "bytes of K per layer");
    std::uint64_t kv_bytes = checked_mul(checked_mul(layer_bytes, 2, "bytes of K and V per layer"),
                                         static_cast<std::uint64_t>(config.layers), "bytes of K and V over config->layers");
    if (dtype == INF_DTYPE_I8) {
        // One float scale per head_dim codes: at most 4/8 of the codes' bytes more, so no new overflow
        // beyond this sum.
        const std::uint64_t scale_bytes = kv_bytes / static_cast<std::uint64_t>(config.head_dim) * sizeof(float);
        if (kv_bytes > std::numeric_limits<std::uint64_t>::max() - scale_bytes) {
            fail(INF_STATUS_OUT_OF_RANGE, "bytes of K and V with their int8 scales overflow 64 bits");
        }
        kv_bytes += scale_bytes;
    }
    std::uint64_t summary_bytes = 0;
    if (config.logical_page_size != 0) {
        const std::uint64_t logical = static_cast<std::uint64_t>(config.page_size / config.logical_page_size);
        // Per (head, logical page): 2 * head_dim values, plus the int8 form's float scale.
        const std::uint64_t bits = static_cast<std::uint64_t>(config.summary_bits == 0 ? 32 : config.summary_bits);
        const std::uint64_t per_box = 2 * static_cast<std::uint64_t>(config.head_dim) * bits / 8 + (bits == 8 ? 4 : 0);
        summary_bytes = checked_mul(
            checked_mul(static_cast<std::uint64_t>(config.kv_heads) * logical * per_box,
                        static_cast<std::uint64_t>(config.pages), "summary bytes per layer"),
            static_cast<std::uint64_t>(config.layers), "summary bytes over config->layers");
    }
    if (kv_bytes > std::numeric_limits<std::uint64_t>::max() - summary_bytes - 2 * kAlignment) {
        fail(INF_STATUS_OUT_OF_RANGE, "bytes of the pool (K, V and summaries) overflow 64 bits");
    }
}

PagePool::PagePool(std::shared_ptr<Device> device, const inf_page_pool_config& config)
    : device_(std::move(device)), config_(config) {
    config_.size = sizeof(inf_page_pool_config);
    element_bytes_ = element_size(config_.dtype);
    const auto u = [](std::int32_t value) { return static_cast<std::uint64_t>(value); };
    // The caller's array is read here only: the config keeps a pointer to the pool's own copy.
    layer_heads_.assign(static_cast<std::size_t>(config_.layers), config_.kv_heads);
    if (config.layer_kv_heads != nullptr) {
        layer_heads_.assign(config.layer_kv_heads, config.layer_kv_heads + config_.layers);
    }
    head_offset_.assign(1, 0);
    for (const std::int32_t heads : layer_heads_) {
        head_offset_.push_back(head_offset_.back() + u(heads));
        per_layer_heads_ = per_layer_heads_ || heads != config_.kv_heads;
    }
    // get_config describes a pool of kv_heads in every layer as one created without the array.
    config_.layer_kv_heads = per_layer_heads_ ? layer_heads_.data() : nullptr;
    const std::uint64_t total_heads = head_offset_.back();  // over all layers
    head_page_elements_ = u(config_.page_size) * u(config_.head_dim);
    summary_bits_ = config_.summary_bits == 0 ? 32 : config_.summary_bits;
    if (config_.logical_page_size > 0) {
        const std::uint64_t boxes = u(config_.page_size / config_.logical_page_size);  // per head
        head_summary_floats_ = boxes * 2 * u(config_.head_dim);
        head_summary_bytes_ = head_summary_floats_ * summary_value_bytes(summary_bits_) + (summary_bits_ == 8 ? boxes * 4 : 0);
    }
    // page_size >= 16 and head_dim % 8 == 0, so K and V pages are multiples of 128 bytes (int8) and the
    // scale and summary regions below start at least 64-byte aligned.
    const std::uint64_t kv_region = total_heads * u(config_.pages) * head_page_elements_ * element_bytes_;
    const std::uint64_t scale_region =
        config_.dtype == INF_DTYPE_I8 ? total_heads * u(config_.pages) * u(config_.page_size) * sizeof(float) : 0;
    const std::uint64_t kv_bytes = 2 * (kv_region + scale_region);
    bytes_ = kv_bytes + total_heads * u(config_.pages) * head_summary_bytes_;

    Backend& backend = device_->backend();
    if (config_.dtype == INF_DTYPE_I8 && !backend.host_accessible()) {
        fail(INF_STATUS_UNSUPPORTED, "config->dtype INF_DTYPE_I8 (int8 KV with per-row scales) is supported on the CPU only, not on ",
             device_->label(), "; use INF_DTYPE_BF16 or INF_DTYPE_F16 there");
    }
    try {
        data_ = backend.allocate(device_->ordinal(), bytes_);
    } catch (const Error& error) {
        if (error.status() != INF_STATUS_OUT_OF_MEMORY) {
            throw;
        }
        fail(INF_STATUS_OUT_OF_MEMORY, "a pool of ", bytes_, " bytes (", config_.layers, " layers of ", config_.pages,
             " pages, K, V and summaries) does not fit on ", device_->label(), ": ", error.what());
    }
    k_ = static_cast<unsigned char*>(data_);
    v_ = k_ + kv_region;
    if (scale_region != 0) {
        k_scale_ = reinterpret_cast<float*>(v_ + kv_region);
        v_scale_ = k_scale_ + scale_region / sizeof(float);
    }
    summary_ = k_ + kv_bytes;
    try {
        // Zeroed K and V (and their scales): a kernel that reads a whole page sees finite values in slots
        // never written.
        backend.fill(device_->ordinal(), k_, 0, 1, kv_bytes);
        initialize_summaries();
    } catch (...) {
        backend.deallocate(device_->ordinal(), data_, bytes_);
        throw;
    }
    log(INF_LOG_LEVEL_DEBUG, "page pool of ", bytes_, " bytes (", config_.layers, " layers, ", config_.pages,
        " pages of ", config_.page_size, " tokens, ", dtype_name(config_.dtype), ") created on ", device_->label());
}

PagePool::~PagePool() {
    free_scratch_.clear();  // scratch first: it lives on the same device
    device_->backend().deallocate(device_->ordinal(), data_, bytes_);
    log(INF_LOG_LEVEL_DEBUG, "page pool of ", bytes_, " bytes freed on ", device_->label());
}

void PagePool::initialize_summaries() {
    if (head_summary_floats_ == 0) {
        return;
    }
    // One page's summary (min = +inf, max = -inf for every logical page and head: an unwritten logical
    // page is an empty set), written once per layer (whose head count sets the page's layout) and then
    // doubled over the layer's pages (contiguous), so the device sees O(layers * log(pages)) copies.
    const auto head_dim = static_cast<std::size_t>(config_.head_dim);
    for (std::int32_t layer = 0; layer < config_.layers; ++layer) {
        if (layer_heads(layer) == 0) {
            continue;
        }
        const std::size_t boxes = summary_page_floats(layer) / (2 * head_dim);
        std::vector<unsigned char> page(summary_page_bytes(layer));
        for (std::size_t box = 0; box < boxes; ++box) {
            const std::size_t at = box * 2 * head_dim;
            if (summary_bits_ == 32) {
                float* values = reinterpret_cast<float*>(page.data()) + at;
                std::fill_n(values, head_dim, kInf);
                std::fill_n(values + head_dim, head_dim, -kInf);
            } else if (summary_bits_ == 16) {
                std::uint16_t* values = reinterpret_cast<std::uint16_t*>(page.data()) + at;
                std::fill_n(values, head_dim, std::uint16_t{0x7F80});             // +inf
                std::fill_n(values + head_dim, head_dim, std::uint16_t{0xFF80});  // -inf
            } else {
                const float empty_lo = kInf;
                const float empty_hi = -kInf;
                float* scales = reinterpret_cast<float*>(page.data() + boxes * 2 * head_dim);
                encode_int8_box(&empty_lo, &empty_hi, config_.head_dim, reinterpret_cast<std::int8_t*>(page.data()) + at,
                                scales + box);
            }
        }
        Backend& backend = device_->backend();
        const std::int32_t ordinal = device_->ordinal();
        const std::uint64_t page_bytes = summary_page_bytes(layer);
        const std::uint64_t total = page_bytes * static_cast<std::uint64_t>(config_.pages);
        unsigned char* base = summary_page(layer, 0);
        backend.copy_from_host(ordinal, base, page.data(), page_bytes);
        for (std::uint64_t done = page_bytes; done < total;) {
            const std::uint64_t chunk = std::min(done, total - done);
            backend.copy_within(ordinal, base + done, base, chunk);
            done += chunk;
        }
    }
}

inf_kv_layer PagePool::kv_layer(std::int32_t layer) const noexcept {
    inf_kv_layer out{};
    const auto index = static_cast<std::uint64_t>(layer);
    out.k = k_page(layer, 0);
    out.v = v_page(layer, 0);
    out.summary = head_summary_floats_ == 0 ? nullptr : reinterpret_cast<float*>(summary_page(layer, 0));
    out.dtype = config_.dtype;
    out.pages = config_.pages;
    out.kv_heads = layer_heads_[index];
    out.head_dim = config_.head_dim;
    out.page_size = config_.page_size;
    out.logical_page_size = config_.logical_page_size;
    out.summary_bits = summary_bits_;
    if (k_scale_ != nullptr) {
        out.k_scale = k_scale_page(layer, 0);
        out.v_scale = v_scale_page(layer, 0);
    }
    return out;
}

void* PagePool::k_page(std::int32_t layer, std::int32_t page) const noexcept {
    return k_ + layer_offset(layer, head_page_elements_ * element_bytes_) + static_cast<std::uint64_t>(page) * kv_page_bytes(layer);
}

void* PagePool::v_page(std::int32_t layer, std::int32_t page) const noexcept {
    return v_ + layer_offset(layer, head_page_elements_ * element_bytes_) + static_cast<std::uint64_t>(page) * kv_page_bytes(layer);
}

float* PagePool::k_scale_page(std::int32_t layer, std::int32_t page) const noexcept {
    const std::uint64_t rows = page_elements(layer) / static_cast<std::uint64_t>(config_.head_dim);
    return k_scale_ + layer_offset(layer, static_cast<std::uint64_t>(config_.page_size)) + static_cast<std::uint64_t>(page) * rows;
}

float* PagePool::v_scale_page(std::int32_t layer, std::int32_t page) const noexcept {
    const std::uint64_t rows = page_elements(layer) / static_cast<std::uint64_t>(config_.head_dim);
    return v_scale_ + layer_offset(layer, static_cast<std::uint64_t>(config_.page_size)) + static_cast<std::uint64_t>(page) * rows;
}

void PagePool::decode_host(const unsigned char* base, const float* scales, std::uint64_t element, std::uint64_t count,
                           float* out) const noexcept {
    to_f32(config_.dtype, base + element * element_bytes_, out, count);
    if (config_.dtype != INF_DTYPE_I8) {
        return;
    }
    // Rows are head_dim codes apart, one scale each; element is a row start (callers read whole rows).
    const auto dim = static_cast<std::uint64_t>(config_.head_dim);
    for (std::uint64_t i = 0; i < count; ++i) {
        out[i] *= scales[(element + i) / dim];
    }
}

unsigned char* PagePool::summary_page(std::int32_t layer, std::int32_t page) const noexcept {
    return summary_ + layer_offset(layer, head_summary_bytes_) + static_cast<std::uint64_t>(page) * summary_page_bytes(layer);
}

void PagePool::check_layer(std::int32_t layer, const char* argument) const {
    if (layer < 0 || layer >= config_.layers) {
        fail(INF_STATUS_OUT_OF_RANGE, argument, " (", layer, ") is out of range: the pool has ", config_.layers,
             config_.layers == 1 ? " layer" : " layers");
    }
}

void PagePool::check_layer_heads(std::int32_t layer) const {
    if (layer_heads(layer) == 0) {
        fail(INF_STATUS_INVALID_ARGUMENT, "layer (", layer, ") of the pool stores no KV heads (config->layer_kv_heads[",
             layer, "] is 0)");
    }
}

void PagePool::check_page(std::int32_t page, const char* argument) const {
    if (page < 0 || page >= config_.pages) {
        fail(INF_STATUS_OUT_OF_RANGE, argument, " (", page, ") is out of range: the pool has ", config_.pages,
             config_.pages == 1 ? " page" : " pages");
    }
}

void PagePool::append(std::int32_t layer, std::int32_t tokens, const std::int32_t* pages, const std::int32_t* slots,
                      const float* k, const float* v) {
    check_layer(layer);
    if (tokens < 0) {
        fail(INF_STATUS_INVALID_ARGUMENT, "tokens (", tokens, ") must be >= 0");
    }
    if (tokens == 0) {
        return;
    }
    check_layer_heads(layer);
    if (pages == nullptr) fail(INF_STATUS_NULL_POINTER, "pages is null");
    if (slots == nullptr) fail(INF_STATUS_NULL_POINTER, "slots is null");
    if (k == nullptr) fail(INF_STATUS_NULL_POINTER, "k is null");
    if (v == nullptr) fail(INF_STATUS_NULL_POINTER, "v is null");
    for (std::int32_t i = 0; i < tokens; ++i) {
        if (pages[i] < 0 || pages[i] >= config_.pages) {
            fail(INF_STATUS_OUT_OF_RANGE, "pages[", i, "] (", pages[i], ") is out of range: the pool has ",
                 config_.pages, config_.pages == 1 ? " page" : " pages");
        }
        if (slots[i] < 0 || slots[i] >= config_.page_size) {
            fail(INF_STATUS_OUT_OF_RANGE, "slots[", i, "] (", slots[i], ") is out of range: a page has ",
                 config_.page_size, " slots");
        }
    }
    inf_kv_append_params params{};
    params.layer = kv_layer(layer);
    params.tokens = tokens;
    Backend& backend = device_->backend();
    if (backend.host_accessible()) {
        params.pages = pages;
        params.slots = slots;
        params.k = k;
        params.v = v;
        if (summary_bits_ != 32) {
            params.layer.summary = nullptr;  // the CPU kernel keeps float32 summaries only: compact ones below
        }
        backend.kv_append(device_->ordinal(), params);
        if (summary_bits_ != 32 && head_summary_bytes_ != 0) {
            ScratchLease scratch(*this);
            update_compact_summaries(layer, tokens, pages, slots, *scratch);
        }
        return;
    }
    // A device pool: k, v, pages and slots go to the device first, into this call's scratch set (one
    // block: [k][v][pages][slots]). Pool-owned scratch rather than per-call buffers because a device
    // allocation per append (every layer of every step) would cost a cudaMalloc/cudaFree pair, which
    // synchronizes the device; the set grows only when a larger append comes. The backend orders the
    // copies into it after any earlier kernel that read it (one stream per device).
    const std::uint64_t row = static_cast<std::uint64_t>(layer_heads(layer)) * static_cast<std::uint64_t>(config_.head_dim);
    const std::uint64_t kv_bytes = checked_mul(static_cast<std::uint64_t>(tokens), row * sizeof(float), "tokens * kv_heads * head_dim * 4");
    const std::uint64_t kv_aligned = (kv_bytes + kAlignment - 1) / kAlignment * kAlignment;
    const std::uint64_t int_bytes = static_cast<std::uint64_t>(tokens) * sizeof(std::int32_t);
    const std::uint64_t int_aligned = (int_bytes + kAlignment - 1) / kAlignment * kAlignment;
    ScratchLease scratch(*this);
    scratch->staging.reserve(*device_, 2 * kv_aligned + 2 * int_aligned);
    auto* base = static_cast<unsigned char*>(scratch->staging.data());
    const std::int32_t ordinal = device_->ordinal();
    backend.copy_from_host(ordinal, base, k, kv_bytes);
    backend.copy_from_host(ordinal, base + kv_aligned, v, kv_bytes);
    backend.copy_from_host(ordinal, base + 2 * kv_aligned, pages, int_bytes);
    backend.copy_from_host(ordinal, base + 2 * kv_aligned + int_aligned, slots, int_bytes);
    params.k = reinterpret_cast<const float*>(base);
    params.v = reinterpret_cast<const float*>(base + kv_aligned);
    params.pages = reinterpret_cast<const std::int32_t*>(base + 2 * kv_aligned);
    params.slots = reinterpret_cast<const std::int32_t*>(base + 2 * kv_aligned + int_aligned);
    backend.kv_append(ordinal, params);
}

void PagePool::update_compact_summaries(std::int32_t layer, std::int32_t tokens, const std::int32_t* pages,
                                        const std::int32_t* slots, PoolScratch& scratch) {
    // Tokens are grouped by logical page, in append order within each group, so that a group is decoded
    // and encoded once: its box starts from the decoded stored one (or empty at a slot-0 restart), widens
    // by each stored key in float32, and is re-encoded outward only when it changed. The stored box thus
    // contains the previous decoded box and every new key: by induction, every key since the restart.
    const int dim = config_.head_dim;
    const int lps = config_.logical_page_size;
    const int subs = config_.page_size / lps;
    const std::int32_t heads = layer_heads(layer);
    const std::uint64_t boxes = static_cast<std::uint64_t>(heads) * static_cast<std::uint64_t>(subs);
    std::vector<std::int32_t>& group = scratch.host_ints;  // [tokens] done flags, then the group's tokens
    group.assign(2 * static_cast<std::size_t>(tokens), 0);
    std::int32_t* done = group.data();
    std::int32_t* members = done + tokens;
    float lo[256];
    float hi[256];
    float key[256];
    for (std::int32_t i = 0; i < tokens; ++i) {
        if (done[i] != 0) {
            continue;
        }
        const std::int32_t page = pages[i];
        const std::int32_t sub = slots[i] / lps;
        int count = 0;
        for (std::int32_t j = i; j < tokens; ++j) {
            if (pages[j] == page && slots[j] / lps == sub) {
                done[j] = 1;
                members[count++] = j;
            }
        }
        unsigned char* stored = summary_page(layer, page);
        for (std::int32_t h = 0; h < heads; ++h) {
            const std::uint64_t box = static_cast<std::uint64_t>(h) * static_cast<std::uint64_t>(subs) + static_cast<std::uint64_t>(sub);
            const std::uint64_t at = box * 2 * static_cast<std::uint64_t>(dim);
            auto* bf16 = reinterpret_cast<std::uint16_t*>(stored) + at;
            auto* codes = reinterpret_cast<std::int8_t*>(stored) + at;
            auto* scale = reinterpret_cast<float*>(stored + boxes * 2 * static_cast<std::uint64_t>(dim)) + box;
            if (summary_bits_ == 16) {
                for (int d = 0; d < dim; ++d) {
                    lo[d] = bf16_to_f32(bf16[d]);
                    hi[d] = bf16_to_f32(bf16[dim + d]);
                }
            } else {
                decode_int8_box(codes, *scale, dim, lo, hi);
            }
            bool changed = false;
            for (int m = 0; m < count; ++m) {
                const std::int32_t t = members[m];
                if (slots[t] % lps == 0) {
                    std::fill_n(lo, dim, kInf);
                    std::fill_n(hi, dim, -kInf);
                    changed = true;
                }
                const std::uint64_t element = ((static_cast<std::uint64_t>(page) * static_cast<std::uint64_t>(heads) +
                                                static_cast<std::uint64_t>(h)) * static_cast<std::uint64_t>(config_.page_size) +
                                               static_cast<std::uint64_t>(slots[t])) * static_cast<std::uint64_t>(dim);
                // The key as stored (rounded to the pool's dtype, or dequantised): what attention reads.
                decode_host(static_cast<const unsigned char*>(k_page(layer, 0)),
                            k_scale_ == nullptr ? nullptr : k_scale_page(layer, 0), element, static_cast<std::uint64_t>(dim), key);
                for (int d = 0; d < dim; ++d) {
                    if (key[d] < lo[d]) {
                        lo[d] = key[d];
                        changed = true;
                    }
                    if (key[d] > hi[d]) {
                        hi[d] = key[d];
                        changed = true;
                    }
                }
            }
            if (!changed) {
                continue;  // re-encoding an unchanged box could only widen it
            }
            if (summary_bits_ == 16) {
                for (int d = 0; d < dim; ++d) {
                    bf16[d] = bf16_round_down(lo[d]);
                    bf16[dim + d] = bf16_round_up(hi[d]);
                }
            } else {
                encode_int8_box(lo, hi, dim, codes, scale);
            }
        }
    }
}

void PagePool::read_page(std::int32_t layer, std::int32_t page, float* k_out, float* v_out) const {
    check_layer(layer);
    check_layer_heads(layer);
    check_page(page, "page");
    if (k_out == nullptr) fail(INF_STATUS_NULL_POINTER, "k_out is null");
    if (v_out == nullptr) fail(INF_STATUS_NULL_POINTER, "v_out is null");
    Backend& backend = device_->backend();
    const std::int32_t ordinal = device_->ordinal();
    const std::uint64_t elements = page_elements(layer);
    const std::uint64_t bytes = elements * element_bytes_;
    const auto read = [&](const void* source, const float* scales, float* out) {
        if (backend.host_accessible()) {  // always so for INF_DTYPE_I8 (refused on other devices)
            decode_host(static_cast<const unsigned char*>(source), scales, 0, elements, out);
        } else if (config_.dtype == INF_DTYPE_F32) {
            backend.copy_to_host(ordinal, out, source, bytes);
        } else {
            std::vector<unsigned char> host(bytes);  // a diagnostic read, not a hot path
            backend.copy_to_host(ordinal, host.data(), source, bytes);
            to_f32(config_.dtype, host.data(), out, elements);
        }
    };
    const bool scaled = k_scale_ != nullptr;
    read(k_page(layer, page), scaled ? k_scale_page(layer, page) : nullptr, k_out);
    read(v_page(layer, page), scaled ? v_scale_page(layer, page) : nullptr, v_out);
}

void PagePool::read_summary(std::int32_t layer, std::int32_t page, float* summary_out) const {
    check_layer(layer);
    check_page(page, "page");
    if (summary_out == nullptr) fail(INF_STATUS_NULL_POINTER, "summary_out is null");
    if (head_summary_floats_ == 0) {
        fail(INF_STATUS_UNSUPPORTED, "the pool keeps no summaries (config->logical_page_size is 0)");
    }
    check_layer_heads(layer);
    const std::uint64_t page_bytes = summary_page_bytes(layer);  // this layer's
    const std::uint64_t page_floats = summary_page_floats(layer);
    Backend& backend = device_->backend();
    if (summary_bits_ == 32) {
        backend.copy_to_host(device_->ordinal(), summary_out, summary_page(layer, page), page_bytes);
        return;
    }
    // A compact form: the stored bytes (a diagnostic read, not a hot path), decoded to the float32 box.
    std::vector<unsigned char> host(page_bytes);
    backend.copy_to_host(device_->ordinal(), host.data(), summary_page(layer, page), page_bytes);
    const int dim = config_.head_dim;
    const std::uint64_t boxes = page_floats / (2 * static_cast<std::uint64_t>(dim));
    for (std::uint64_t box = 0; box < boxes; ++box) {
        float* lo = summary_out + box * 2 * static_cast<std::uint64_t>(dim);
        if (summary_bits_ == 16) {
            const auto* bits = reinterpret_cast<const std::uint16_t*>(host.data()) + box * 2 * static_cast<std::uint64_t>(dim);
            for (int d = 0; d < 2 * dim; ++d) {
                lo[d] = bf16_to_f32(bits[d]);
            }
        } else {
            float scale = 0.0f;
            std::memcpy(&scale, host.data() + boxes * 2 * static_cast<std::uint64_t>(dim) + box * sizeof(float), sizeof scale);
            decode_int8_box(reinterpret_cast<const std::int8_t*>(host.data()) + box * 2 * static_cast<std::uint64_t>(dim),
                            scale, dim, lo, lo + dim);
        }
    }
}

void PagePool::copy_pages(PagePool& dst, const std::int32_t* dst_pages, const PagePool& src,
                          const std::int32_t* src_pages, std::int32_t count) {
    const inf_page_pool_config& a = dst.config_;
    const inf_page_pool_config& b = src.config_;
    const auto differ = [](const char* field, auto x, auto y) {
        fail(INF_STATUS_INVALID_ARGUMENT, "dst and src pools differ in config->", field, " (", x, " vs ", y,
             "); pages copy only between pools of one shape");
    };
    if (a.dtype != b.dtype) differ("dtype", dtype_name(a.dtype), dtype_name(b.dtype));
    if (a.layers != b.layers) differ("layers", a.layers, b.layers);
    if (a.kv_heads != b.kv_heads) differ("kv_heads", a.kv_heads, b.kv_heads);
    if (a.head_dim != b.head_dim) differ("head_dim", a.head_dim, b.head_dim);
    if (a.page_size != b.page_size) differ("page_size", a.page_size, b.page_size);
    if (a.logical_page_size != b.logical_page_size) {
        differ("logical_page_size", a.logical_page_size, b.logical_page_size);
    }
    if (a.logical_page_size != 0 && dst.summary_bits_ != src.summary_bits_) {
        differ("summary_bits", dst.summary_bits_, src.summary_bits_);
    }
    for (std::int32_t l = 0; l < a.layers; ++l) {
        if (dst.layer_heads(l) != src.layer_heads(l)) {
            differ(cat("layer_kv_heads[", l, "]").c_str(), dst.layer_heads(l), src.layer_heads(l));
        }
    }
    if (count < 0) {
        fail(INF_STATUS_INVALID_ARGUMENT, "count (", count, ") must be >= 0");
    }
    if (count == 0) {
        return;
    }
    if (dst_pages == nullptr) fail(INF_STATUS_NULL_POINTER, "dst_pages is null");
    if (src_pages == nullptr) fail(INF_STATUS_NULL_POINTER, "src_pages is null");
    for (std::int32_t i = 0; i < count; ++i) {
        if (dst_pages[i] < 0 || dst_pages[i] >= a.pages) {
            fail(INF_STATUS_OUT_OF_RANGE, "dst_pages[", i, "] (", dst_pages[i], ") is out of range: dst has ", a.pages,
                 a.pages == 1 ? " page" : " pages");
        }
        if (src_pages[i] < 0 || src_pages[i] >= b.pages) {
            fail(INF_STATUS_OUT_OF_RANGE, "src_pages[", i, "] (", src_pages[i], ") is out of range: src has ", b.pages,
                 b.pages == 1 ? " page" : " pages");
        }
    }
    // Duplicate destinations would make the result depend on the copy order: refused. Within one pool,
    // a page that is both a source and a destination is refused for the same reason.
    std::vector<std::pair<std::int32_t, std::int32_t>> sorted(static_cast<std::size_t>(count));
    for (std::int32_t i = 0; i < count; ++i) {
        sorted[static_cast<std::size_t>(i)] = {dst_pages[i], i};
    }
    std::sort(sorted.begin(), sorted.end());
    for (std::size_t i = 1; i < sorted.size(); ++i) {
        if (sorted[i].first == sorted[i - 1].first) {
            fail(INF_STATUS_INVALID_ARGUMENT, "dst_pages[", sorted[i].second, "] (", sorted[i].first,
                 ") repeats dst_pages[", sorted[i - 1].second, "]: each destination page may appear once");
        }
    }
    if (&dst == &src) {
        for (std::int32_t i = 0; i < count; ++i) {
            const auto it = std::lower_bound(sorted.begin(), sorted.end(), std::make_pair(src_pages[i], std::int32_t{0}));
            if (it != sorted.end() && it->first == src_pages[i]) {
                fail(INF_STATUS_INVALID_ARGUMENT, "src_pages[", i, "] (", src_pages[i], ") is also dst_pages[",
                     it->second, "]: within one pool a page cannot be both a source and a destination");
            }
        }
    }

    const Device& to = dst.device();
    const Device& from = src.device();
    std::vector<unsigned char> host;  // only for a copy between two different non-host backends
    const auto move = [&](void* target, const void* source, std::uint64_t bytes) {
        if (to.same_device(from)) {
            to.backend().copy_within(to.ordinal(), target, source, bytes);
        } else if (to.backend().host_accessible()) {
            from.backend().copy_to_host(from.ordinal(), target, source, bytes);
        } else if (from.backend().host_accessible()) {
            to.backend().copy_from_host(to.ordinal(), target, source, bytes);
        } else if (&to.backend() == &from.backend()) {
            to.backend().copy_peer(to.ordinal(), target, from.ordinal(), source, bytes);
        } else {
            host.resize(bytes);
            from.backend().copy_to_host(from.ordinal(), host.data(), source, bytes);
            to.backend().copy_from_host(to.ordinal(), target, host.data(), bytes);
        }
    };
    // Runs of consecutive pages on both sides move as one block per layer and array.
    for (std::int32_t i = 0; i < count;) {
        std::int32_t run = 1;
        while (i + run < count && dst_pages[i + run] == dst_pages[i] + run && src_pages[i + run] == src_pages[i] + run) {
            ++run;
        }
        const auto pages = static_cast<std::uint64_t>(run);
        for (std::int32_t l = 0; l < a.layers; ++l) {
            const std::uint64_t kv_page_bytes = dst.kv_page_bytes(l);  // one head count on both sides (checked above)
            const std::uint64_t summary_page_bytes = dst.summary_page_bytes(l);  // copied as stored
            move(dst.k_page(l, dst_pages[i]), src.k_page(l, src_pages[i]), pages * kv_page_bytes);
            move(dst.v_page(l, dst_pages[i]), src.v_page(l, src_pages[i]), pages * kv_page_bytes);
            if (dst.k_scale_ != nullptr) {  // one dtype on both sides (checked above)
                const std::uint64_t scale_bytes = pages * dst.scale_page_bytes(l);
                move(dst.k_scale_page(l, dst_pages[i]), src.k_scale_page(l, src_pages[i]), scale_bytes);
                move(dst.v_scale_page(l, dst_pages[i]), src.v_scale_page(l, src_pages[i]), scale_bytes);
            }
            if (summary_page_bytes != 0) {
                move(dst.summary_page(l, dst_pages[i]), src.summary_page(l, src_pages[i]), pages * summary_page_bytes);
            }
        }
        i += run;
    }
}

std::unique_ptr<PoolScratch> PagePool::acquire_scratch() const {
    {
        std::lock_guard lock(scratch_mutex_);
        if (!free_scratch_.empty()) {
            std::unique_ptr<PoolScratch> scratch = std::move(free_scratch_.back());
            free_scratch_.pop_back();
            return scratch;
        }
    }
    return std::make_unique<PoolScratch>();
}

void PagePool::release_scratch(std::unique_ptr<PoolScratch> scratch) const noexcept {
    if (scratch == nullptr) {
        return;
    }
    std::lock_guard lock(scratch_mutex_);
    try {
        free_scratch_.push_back(std::move(scratch));
    } catch (...) {
        // Out of host memory for the list: the set is freed instead (scratch's destructor).
    }
}

// ---- page messages (migration between instances) --------------------------------------------------

namespace {

// The head of a page message. Plain int32 fields in the sender's byte order: both ends run this library on
// machines of one architecture (MPI and NCCL groups are homogeneous).
struct PageMessageHeader {
    std::uint32_t magic;
    std::uint32_t version;
    std::int32_t dtype;
    std::int32_t layers;
    std::int32_t kv_heads;
    std::int32_t head_dim;
    std::int32_t page_size;
    std::int32_t logical_page_size;
    std::int32_t summary_bits;  // 0 when the pool has no summaries
    std::int32_t count;
};

constexpr std::uint32_t kPageMessageMagic = 0x50464E49u;  // "INFP"
constexpr std::uint32_t kPageMessageVersion = 1;

}  // namespace

std::uint64_t PagePool::scale_page_bytes(std::int32_t layer) const noexcept {
    return k_scale_ != nullptr ? page_elements(layer) / static_cast<std::uint64_t>(config_.head_dim) * sizeof(float) : 0;
}

void PagePool::refuse_per_layer_migration(const char* pool) const {
    // The page message carries one head count for every layer; a pool with per-layer counts (a ring pool, a
    // retrieval-heads pool) stays on its instance.
    if (per_layer_heads_) {
        fail(INF_STATUS_UNSUPPORTED, pool, " stores per-layer KV head counts (config->layer_kv_heads): page migration of "
             "such a pool is not supported");
    }
}

void PagePool::pool_to_host(void* host, const void* pool_memory, std::uint64_t bytes) const {
    if (device_->backend().host_accessible()) {
        std::memcpy(host, pool_memory, static_cast<std::size_t>(bytes));
    } else {
        device_->backend().copy_to_host(device_->ordinal(), host, pool_memory, bytes);
    }
}

void PagePool::host_to_pool(void* pool_memory, const void* host, std::uint64_t bytes) const {
    if (device_->backend().host_accessible()) {
        std::memcpy(pool_memory, host, static_cast<std::size_t>(bytes));
    } else {
        device_->backend().copy_from_host(device_->ordinal(), pool_memory, host, bytes);
    }
}

void PagePool::pack_pages(const std::int32_t* pages, std::int32_t count, std::vector<std::byte>& out) const {
    if (count < 0) {
        fail(INF_STATUS_INVALID_ARGUMENT, "count (", count, ") must be >= 0");
    }
    if (count > 0 && pages == nullptr) {
        fail(INF_STATUS_NULL_POINTER, "pages is null");
    }
    for (std::int32_t i = 0; i < count; ++i) {
        check_page(pages[i], cat("pages[", i, "]").c_str());
    }
    refuse_per_layer_migration("pool");
    const std::uint64_t per_page = 2 * kv_page_bytes(0) + 2 * scale_page_bytes(0) + summary_page_bytes(0);
    const std::uint64_t payload =
        checked_mul(checked_mul(per_page, static_cast<std::uint64_t>(config_.layers), "page message bytes"),
                    static_cast<std::uint64_t>(count), "page message bytes");
    out.resize(static_cast<std::size_t>(sizeof(PageMessageHeader) + payload));

    PageMessageHeader header{};
    header.magic = kPageMessageMagic;
    header.version = kPageMessageVersion;
    header.dtype = raw_enum(config_.dtype);
    header.layers = config_.layers;
    header.kv_heads = config_.kv_heads;
    header.head_dim = config_.head_dim;
    header.page_size = config_.page_size;
    header.logical_page_size = config_.logical_page_size;
    header.summary_bits = config_.logical_page_size != 0 ? summary_bits_ : 0;
    header.count = count;
    std::memcpy(out.data(), &header, sizeof header);

    // Per layer: K of every page, V of every page, then K scales, V scales, summaries (the pool's own order).
    std::byte* at = out.data() + sizeof header;
    const auto take = [&](const void* source, std::uint64_t bytes) {
        if (bytes != 0) {
            pool_to_host(at, source, bytes);
            at += bytes;
        }
    };
    for (std::int32_t l = 0; l < config_.layers; ++l) {
        for (std::int32_t i = 0; i < count; ++i) take(k_page(l, pages[i]), kv_page_bytes(l));
        for (std::int32_t i = 0; i < count; ++i) take(v_page(l, pages[i]), kv_page_bytes(l));
        if (k_scale_ != nullptr) {
            for (std::int32_t i = 0; i < count; ++i) take(k_scale_page(l, pages[i]), scale_page_bytes(l));
            for (std::int32_t i = 0; i < count; ++i) take(v_scale_page(l, pages[i]), scale_page_bytes(l));
        }
        if (head_summary_bytes_ != 0) {
            for (std::int32_t i = 0; i < count; ++i) take(summary_page(l, pages[i]), summary_page_bytes(l));
        }
    }
}

void PagePool::check_unpack_pages(const std::int32_t* pages, std::int32_t count) const {
    if (count < 0) {
        fail(INF_STATUS_INVALID_ARGUMENT, "count (", count, ") must be >= 0");
    }
    if (count > 0 && pages == nullptr) {
        fail(INF_STATUS_NULL_POINTER, "pages is null");
    }
    std::vector<std::pair<std::int32_t, std::int32_t>> sorted(static_cast<std::size_t>(count));
    for (std::int32_t i = 0; i < count; ++i) {
        check_page(pages[i], cat("pages[", i, "]").c_str());
        sorted[static_cast<std::size_t>(i)] = {pages[i], i};
    }
    // A repeated destination would make the result depend on the store order.
    std::sort(sorted.begin(), sorted.end());
    for (std::size_t i = 1; i < sorted.size(); ++i) {
        if (sorted[i].first == sorted[i - 1].first) {
            fail(INF_STATUS_INVALID_ARGUMENT, "pages[", sorted[i].second, "] (", sorted[i].first, ") repeats pages[",
                 sorted[i - 1].second, "]: each destination page may appear once");
        }
    }
    refuse_per_layer_migration("pool");
}

void PagePool::unpack_pages(const std::byte* message, std::uint64_t bytes, const std::int32_t* pages,
                            std::int32_t count) {
    check_unpack_pages(pages, count);
    PageMessageHeader header{};
    if (bytes < sizeof header) {
        fail(INF_STATUS_PEER_FAILED, "the message (", bytes, " bytes) is too short for a page message (",
             sizeof header, " bytes of header at least)");
    }
    std::memcpy(&header, message, sizeof header);
    if (header.magic != kPageMessageMagic || header.version != kPageMessageVersion) {
        fail(INF_STATUS_PEER_FAILED, "the message is not a page message of this library version (magic ",
             Hex{header.magic}, ", version ", header.version, ")");
    }
    const auto differ = [](const char* field, auto mine, auto theirs) {
        fail(INF_STATUS_INVALID_ARGUMENT, "pool differs from the sender's pool in config->", field, " (", mine,
             " here, ", theirs, " there); pages move only between pools of one shape");
    };
    if (header.dtype != raw_enum(config_.dtype)) {
        differ("dtype", dtype_name(config_.dtype), header.dtype);
    }
    if (header.layers != config_.layers) differ("layers", config_.layers, header.layers);
    if (header.kv_heads != config_.kv_heads) differ("kv_heads", config_.kv_heads, header.kv_heads);
    if (header.head_dim != config_.head_dim) differ("head_dim", config_.head_dim, header.head_dim);
    if (header.page_size != config_.page_size) differ("page_size", config_.page_size, header.page_size);
    if (header.logical_page_size != config_.logical_page_size) {
        differ("logical_page_size", config_.logical_page_size, header.logical_page_size);
    }
    const std::int32_t bits = config_.logical_page_size != 0 ? summary_bits_ : 0;
    if (header.summary_bits != bits) differ("summary_bits", bits, header.summary_bits);
    if (header.count != count) {
        fail(INF_STATUS_INVALID_ARGUMENT, "count (", count, ") differs from the ", header.count,
             " pages the sender sent");
    }
    const std::uint64_t per_page = 2 * kv_page_bytes(0) + 2 * scale_page_bytes(0) + summary_page_bytes(0);
    const std::uint64_t expected = sizeof header + per_page * static_cast<std::uint64_t>(config_.layers) *
                                                       static_cast<std::uint64_t>(count);
    if (bytes != expected) {
        fail(INF_STATUS_PEER_FAILED, "the page message is ", bytes, " bytes, but ", count, " pages of this shape are ",
             expected, " bytes");
    }

    const std::byte* at = message + sizeof header;
    const auto put = [&](void* target, std::uint64_t size) {
        if (size != 0) {
            host_to_pool(target, at, size);
            at += size;
        }
    };
    for (std::int32_t l = 0; l < config_.layers; ++l) {
        for (std::int32_t i = 0; i < count; ++i) put(k_page(l, pages[i]), kv_page_bytes(l));
        for (std::int32_t i = 0; i < count; ++i) put(v_page(l, pages[i]), kv_page_bytes(l));
        if (k_scale_ != nullptr) {
            for (std::int32_t i = 0; i < count; ++i) put(k_scale_page(l, pages[i]), scale_page_bytes(l));
            for (std::int32_t i = 0; i < count; ++i) put(v_scale_page(l, pages[i]), scale_page_bytes(l));
        }
        if (head_summary_bytes_ != 0) {
            for (std::int32_t i = 0; i < count; ++i) put(summary_page(l, pages[i]), summary_page_bytes(l));
        }
    }
}

}  // namespace inf
