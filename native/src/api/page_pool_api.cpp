// Exports: page pools (the paged KV cache). Arguments are checked in order; the checks of the pool's
// own operations live in kv/page_pool.cpp and name the arguments the same way.
#include <cstddef>

#include "api/checks.h"
#include "kv/page_pool.h"

using namespace inf;

namespace {

// The first version of inf_page_pool_config ended before summary_bits (read as 0 = float32).
constexpr std::size_t kPoolConfigFirstSize = offsetof(inf_page_pool_config, summary_bits);

std::shared_ptr<PagePool> find_pool(const inf_page_pool* handle, const char* argument) {
    return find_handle<PagePool>(handle, HandleKind::page_pool, argument);
}

}  // namespace

extern "C" {

INF_API inf_status inf_page_pool_create(inf_device* device, const inf_page_pool_config* config,
                                        inf_page_pool** out_pool) {
    return guard("inf_page_pool_create", [&] {
        if (out_pool != nullptr) {
            *out_pool = nullptr;  // a failed call never leaves a stale handle behind
        }
        auto owner = api::find_device(device, "device");
        const inf_page_pool_config shape = api::read_versioned(config, "config", "inf_page_pool_config",
                                                                kPoolConfigFirstSize);
        PagePool::validate(shape);
        api::require_pointer(out_pool, "out_pool");
        auto pool = std::make_shared<PagePool>(std::move(owner), shape);
        const std::uintptr_t handle = HandleRegistry::instance().add(HandleKind::page_pool, std::move(pool));
        *out_pool = reinterpret_cast<inf_page_pool*>(handle);
    });
}

INF_API inf_status inf_page_pool_destroy(inf_page_pool* pool) {
    return guard("inf_page_pool_destroy", [&] {
        if (pool == nullptr) {
            return;
        }
        // Freed here (outside the registry lock), or when a call still using it on another thread returns.
        HandleRegistry::instance().remove(reinterpret_cast<std::uintptr_t>(pool), HandleKind::page_pool, "pool");
    });
}

INF_API inf_status inf_page_pool_get_config(const inf_page_pool* pool, inf_page_pool_config* out_config) {
    return guard("inf_page_pool_get_config", [&] {
        const auto object = find_pool(pool, "pool");
        api::check_versioned(out_config, "out_config", "inf_page_pool_config", kPoolConfigFirstSize);
        api::write_versioned(out_config, object->config());
    });
}

INF_API inf_status inf_page_pool_bytes(const inf_page_pool* pool, uint64_t* out_bytes) {
    return guard("inf_page_pool_bytes", [&] {
        const auto object = find_pool(pool, "pool");
        api::require_pointer(out_bytes, "out_bytes");
        *out_bytes = object->bytes();
    });
}

INF_API inf_status inf_page_pool_append(inf_page_pool* pool, int32_t layer, int32_t tokens, const int32_t* pages,
                                        const int32_t* slots, const float* k, const float* v) {
    return guard("inf_page_pool_append", [&] {
        const auto object = find_pool(pool, "pool");
        object->append(layer, tokens, pages, slots, k, v);
    });
}

INF_API inf_status inf_page_pool_read_page(const inf_page_pool* pool, int32_t layer, int32_t page, float* k_out,
                                           float* v_out) {
    return guard("inf_page_pool_read_page", [&] {
        const auto object = find_pool(pool, "pool");
        object->read_page(layer, page, k_out, v_out);
    });
}

INF_API inf_status inf_page_pool_read_summary(const inf_page_pool* pool, int32_t layer, int32_t page,
                                              float* summary_out) {
    return guard("inf_page_pool_read_summary", [&] {
        const auto object = find_pool(pool, "pool");
        object->read_summary(layer, page, summary_out);
    });
}

INF_API inf_status inf_page_pool_copy_pages(inf_page_pool* dst, const int32_t* dst_pages, const inf_page_pool* src,
                                            const int32_t* src_pages, int32_t count) {
    return guard("inf_page_pool_copy_pages", [&] {
        const auto to = find_pool(dst, "dst");
        const auto from = find_pool(src, "src");
        PagePool::copy_pages(*to, dst_pages, *from, src_pages, count);
    });
}

}  // extern "C"
