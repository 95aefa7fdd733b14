// The internal interface every kind of device implements (CPU in-process, CUDA through the plug-in).
//
// Pointers are device addresses of the backend; only a host_accessible() backend's pointers may be
// dereferenced by the core. Every method reports failure by throwing inf::Error with a message that
// names the device ("cpu:0", "cuda:1"). Methods are thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "attention/attention_params.h"
#include "core/plugin_model_abi.h"
#include "infinite/infinite.h"

namespace inf {

class Backend {
public:
    Backend() = default;
    Backend(const Backend&) = delete;
    Backend& operator=(const Backend&) = delete;
    virtual ~Backend() = default;

    virtual inf_device_kind kind() const noexcept = 0;
    // True when the core may read and write the backend's memory directly (the CPU).
    virtual bool host_accessible() const noexcept = 0;
    virtual std::int32_t device_count() const = 0;

    // Fills every field of info except size.
    virtual void device_info(std::int32_t ordinal, inf_device_info& info) const = 0;

    // At least 256-byte aligned. Throws OUT_OF_MEMORY when the device cannot hold bytes more.
    virtual void* allocate(std::int32_t ordinal, std::uint64_t bytes) = 0;
    // Safe from any thread. Failures are logged, not thrown (it runs in destructors).
    virtual void deallocate(std::int32_t ordinal, void* pointer, std::uint64_t bytes) noexcept = 0;

    virtual void copy_from_host(std::int32_t ordinal, void* dst, const void* src, std::uint64_t bytes) = 0;
    virtual void copy_to_host(std::int32_t ordinal, void* dst, const void* src, std::uint64_t bytes) = 0;
    // Within one device; the ranges may overlap (memmove semantics).
    virtual void copy_within(std::int32_t ordinal, void* dst, const void* src, std::uint64_t bytes) = 0;
    // Between two devices of this backend.
    virtual void copy_peer(std::int32_t dst_ordinal, void* dst, std::int32_t src_ordinal, const void* src,
                           std::uint64_t bytes) = 0;
    // count copies of the pattern_bytes (1, 2, 4 or 8) low bytes of pattern, in memory order, from dst
    // (any alignment).
    virtual void fill(std::int32_t ordinal, void* dst, std::uint64_t pattern, std::uint32_t pattern_bytes,
                      std::uint64_t count) = 0;
    virtual void synchronize(std::int32_t ordinal) = 0;

    // Paged-KV kernels (attention_params.h). Pointers inside the params are this backend's device
    // addresses; the core has validated every index. The defaults throw INF_STATUS_UNSUPPORTED
    // naming the device, for backends that do not implement them yet.
    virtual void kv_append(std::int32_t ordinal, const inf_kv_append_params& params);
    virtual void attention(std::int32_t ordinal, const inf_attention_params& params);
    virtual void attention_merge(std::int32_t ordinal, const inf_attention_merge_params& params);
    virtual void page_select(std::int32_t ordinal, const inf_page_select_params& params);
    // Bytes of workspace page_select() needs for params; 0 when none.
    virtual std::uint64_t page_select_workspace_bytes(std::int32_t ordinal, const inf_page_select_params& params) const;
    // Bytes of workspace attention() needs for params (split-KV partials); 0 when none.
    virtual std::uint64_t attention_workspace_bytes(std::int32_t ordinal, const inf_attention_params& params) const;

    // The whole dense forward step of a Llama-family model on a device the core cannot address
    // (plugin_model_abi.h); the CPU runs LlamaModel's own step instead. require_model_step throws
    // INF_STATUS_UNSUPPORTED naming the device when the backend has none (checked before weights upload).
    virtual void require_model_step(std::int32_t ordinal) const;
    virtual std::uint64_t model_step_workspace_bytes(std::int32_t ordinal, const inf_plugin_model_step& params) const;
    virtual void model_step(std::int32_t ordinal, const inf_plugin_model_step& params);
};

// "cpu", "cuda".
const char* device_kind_name(inf_device_kind kind) noexcept;
// "cpu:0", "cuda:1".
std::string device_label(inf_device_kind kind, std::int32_t ordinal);

// The backend for kind, loading it on first use; throws BACKEND_UNAVAILABLE with the reason.
Backend& require_backend(inf_device_kind kind);
// The backend for kind, or nullptr when it cannot be loaded (reason then holds why, if given).
Backend* try_backend(inf_device_kind kind, std::string* reason = nullptr);

// Throws OUT_OF_RANGE ("ordinal 3: there is 1 cpu device") unless 0 <= ordinal < device_count().
void check_ordinal(const Backend& backend, std::int32_t ordinal);

// Copies name into a fixed buffer of capacity bytes, zero-terminated, cut at a UTF-8 character boundary.
void copy_device_name(char* out, std::size_t capacity, const std::string& name) noexcept;

}  // namespace inf
