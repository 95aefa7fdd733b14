// Argument checks shared by the exports. Each throws inf::Error naming the argument; guard() adds the
// function name in front, e.g. "inf_buffer_write: dst_offset (100) + bytes (200) exceeds buffer size (256)".
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>

#include "core/backend.h"
#include "core/buffer.h"
#include "core/device.h"
#include "core/handle_registry.h"
#include "core/status.h"
#include "infinite/infinite.h"

namespace inf::api {

inline void require_pointer(const void* pointer, const char* argument) {
    if (pointer == nullptr) {
        fail(INF_STATUS_NULL_POINTER, argument, " is null");
    }
}

// Takes the parameter by reference: it is read as an integer (raw_enum) before it is trusted as an enum.
inline void check_kind(const inf_device_kind& kind) {
    const std::int32_t raw = raw_enum(kind);
    if (raw != INF_DEVICE_KIND_CPU && raw != INF_DEVICE_KIND_CUDA) {
        fail(INF_STATUS_INVALID_ARGUMENT, "kind (", raw,
             ") is not an inf_device_kind (INF_DEVICE_KIND_CPU = 0, INF_DEVICE_KIND_CUDA = 1)");
    }
}

// offset + bytes must not overflow and must stay within size. what names the bytes argument when it is
// not literally "bytes" (inf_buffer_fill passes "count * pattern_bytes").
inline void check_range(const char* offset_name, std::uint64_t offset, std::uint64_t bytes, std::uint64_t size,
                        const char* what = "bytes") {
    if (offset > UINT64_MAX - bytes) {
        fail(INF_STATUS_OUT_OF_RANGE, offset_name, " (", offset, ") + ", what, " (", bytes, ") overflows 64 bits");
    }
    if (offset + bytes > size) {
        fail(INF_STATUS_OUT_OF_RANGE, offset_name, " (", offset, ") + ", what, " (", bytes,
             ") exceeds buffer size (", size, ")");
    }
}

// Versioned out-structs: the caller sets out->size to the sizeof it was compiled with. Anything smaller
// than the first version of the struct is refused (naming "<argument>->size"); otherwise only
// min(size, sizeof) bytes are written, so callers built against an older or newer header keep working.
// first_version_size is sizeof the struct's first version (the default: the struct has one version).
template <class T>
void check_versioned(const T* out, const char* argument, const char* type_name,
                     std::size_t first_version_size = sizeof(T)) {
    require_pointer(out, argument);
    if (out->size < first_version_size) {
        fail(INF_STATUS_INVALID_ARGUMENT, argument, "->size (", out->size, ") is smaller than sizeof(", type_name,
             ") (", first_version_size, "); set it to sizeof(", type_name, ")");
    }
}

// Versioned in-structs: a copy of the caller's struct, of which only min(size, sizeof) bytes are read
// (the rest stays zero). The same minimum as check_versioned applies.
template <class T>
T read_versioned(const T* in, const char* argument, const char* type_name,
                 std::size_t first_version_size = sizeof(T)) {
    check_versioned(in, argument, type_name, first_version_size);
    T value{};
    std::memcpy(&value, in, std::min<std::size_t>(in->size, sizeof(T)));
    return value;
}

template <class T>
void write_versioned(T* out, T value) {
    value.size = out->size;
    std::memcpy(out, &value, std::min<std::size_t>(out->size, sizeof(T)));
}

inline std::shared_ptr<Device> find_device(const inf_device* handle, const char* argument) {
    return find_handle<Device>(handle, HandleKind::device, argument);
}

inline std::shared_ptr<Buffer> find_buffer(const inf_buffer* handle, const char* argument) {
    return find_handle<Buffer>(handle, HandleKind::buffer, argument);
}

}  // namespace inf::api
