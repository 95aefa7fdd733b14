#include "core/backend.h"

#include <cstring>

#include "core/cpu_backend.h"
#include "core/cuda_loader.h"
#include "core/status.h"

namespace inf {

const char* device_kind_name(inf_device_kind kind) noexcept {
    switch (kind) {
        case INF_DEVICE_KIND_CPU: return "cpu";
        case INF_DEVICE_KIND_CUDA: return "cuda";
    }
    return "unknown";
}

std::string device_label(inf_device_kind kind, std::int32_t ordinal) {
    return cat(device_kind_name(kind), ':', ordinal);
}

Backend* try_backend(inf_device_kind kind, std::string* reason) {
    switch (kind) {
        case INF_DEVICE_KIND_CPU: return &cpu_backend();
        case INF_DEVICE_KIND_CUDA: {
            const CudaLoadResult& load = load_cuda_backend();
            if (load.backend == nullptr && reason != nullptr) {
                *reason = load.error;
            }
            return load.backend;
        }
    }
    if (reason != nullptr) {
        *reason = cat("unknown device kind ", static_cast<int>(kind));
    }
    return nullptr;
}

Backend& require_backend(inf_device_kind kind) {
    std::string reason;
    Backend* backend = try_backend(kind, &reason);
    if (backend == nullptr) {
        throw Error(INF_STATUS_BACKEND_UNAVAILABLE, reason);
    }
    return *backend;
}

void check_ordinal(const Backend& backend, std::int32_t ordinal) {
    const std::int32_t count = backend.device_count();
    if (ordinal < 0 || ordinal >= count) {
        fail(INF_STATUS_OUT_OF_RANGE, "ordinal ", ordinal, ": there ", count == 1 ? "is " : "are ", count, ' ',
             device_kind_name(backend.kind()), count == 1 ? " device" : " devices");
    }
}

void copy_device_name(char* out, std::size_t capacity, const std::string& name) noexcept {
    if (capacity == 0) {
        return;
    }
    std::size_t length = name.size() < capacity - 1 ? name.size() : capacity - 1;
    // Never cut inside a multi-byte UTF-8 sequence: back up over continuation bytes (10xxxxxx).
    if (length < name.size()) {
        while (length > 0 && (static_cast<unsigned char>(name[length]) & 0xC0U) == 0x80U) {
            --length;
        }
    }
    std::memcpy(out, name.data(), length);
    std::memset(out + length, 0, capacity - length);
}

void Backend::kv_append(std::int32_t ordinal, const inf_kv_append_params&) {
    fail(INF_STATUS_UNSUPPORTED, "kv_append is not implemented on ", device_label(kind(), ordinal));
}

void Backend::attention(std::int32_t ordinal, const inf_attention_params&) {
    fail(INF_STATUS_UNSUPPORTED, "attention is not implemented on ", device_label(kind(), ordinal));
}

void Backend::attention_merge(std::int32_t ordinal, const inf_attention_merge_params&) {
    fail(INF_STATUS_UNSUPPORTED, "attention merge is not implemented on ", device_label(kind(), ordinal));
}

void Backend::page_select(std::int32_t ordinal, const inf_page_select_params&) {
    fail(INF_STATUS_UNSUPPORTED, "page selection is not implemented on ", device_label(kind(), ordinal));
}

std::uint64_t Backend::page_select_workspace_bytes(std::int32_t, const inf_page_select_params&) const { return 0; }

std::uint64_t Backend::attention_workspace_bytes(std::int32_t, const inf_attention_params&) const { return 0; }

void Backend::require_model_step(std::int32_t ordinal) const {
    fail(INF_STATUS_UNSUPPORTED, "the model step is not implemented on ", device_label(kind(), ordinal));
}

std::uint64_t Backend::model_step_workspace_bytes(std::int32_t ordinal, const inf_plugin_model_step&) const {
    require_model_step(ordinal);
    return 0;
}

void Backend::model_step(std::int32_t ordinal, const inf_plugin_model_step&) { require_model_step(ordinal); }

}  // namespace inf
