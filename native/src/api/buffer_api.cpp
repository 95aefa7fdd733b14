// Exports: buffers. Arguments are checked in order; a null host pointer is accepted when no byte moves.
#include <cstring>

#include "api/checks.h"

using namespace inf;

extern "C" {

INF_API inf_status inf_buffer_create(inf_device* device, uint64_t bytes, inf_buffer** out_buffer) {
    return guard("inf_buffer_create", [&] {
        if (out_buffer != nullptr) {
            *out_buffer = nullptr;  // a failed call never leaves a stale handle behind
        }
        auto owner = api::find_device(device, "device");
        if (bytes == 0) {
            fail(INF_STATUS_INVALID_ARGUMENT, "bytes is 0: a buffer holds at least one byte");
        }
        api::require_pointer(out_buffer, "out_buffer");
        auto buffer = std::make_shared<Buffer>(std::move(owner), bytes);
        const std::uintptr_t handle = HandleRegistry::instance().add(HandleKind::buffer, std::move(buffer), bytes);
        *out_buffer = reinterpret_cast<inf_buffer*>(handle);
    });
}

INF_API inf_status inf_buffer_destroy(inf_buffer* buffer) {
    return guard("inf_buffer_destroy", [&] {
        if (buffer == nullptr) {
            return;
        }
        // Freed here (outside the registry lock), or when a call still using it on another thread returns.
        HandleRegistry::instance().remove(reinterpret_cast<std::uintptr_t>(buffer), HandleKind::buffer, "buffer");
    });
}

INF_API inf_status inf_buffer_size(const inf_buffer* buffer, uint64_t* out_bytes) {
    return guard("inf_buffer_size", [&] {
        const auto object = api::find_buffer(buffer, "buffer");
        api::require_pointer(out_bytes, "out_bytes");
        *out_bytes = object->size();
    });
}

INF_API inf_status inf_buffer_location(const inf_buffer* buffer, inf_device_kind* out_kind, int32_t* out_ordinal) {
    return guard("inf_buffer_location", [&] {
        const auto object = api::find_buffer(buffer, "buffer");
        api::require_pointer(out_kind, "out_kind");
        api::require_pointer(out_ordinal, "out_ordinal");
        *out_kind = object->device().kind();
        *out_ordinal = object->device().ordinal();
    });
}

INF_API inf_status inf_buffer_write(inf_buffer* dst, uint64_t dst_offset, const void* src, uint64_t bytes) {
    return guard("inf_buffer_write", [&] {
        const auto buffer = api::find_buffer(dst, "dst");
        api::check_range("dst_offset", dst_offset, bytes, buffer->size());
        if (bytes == 0) {
            return;
        }
        api::require_pointer(src, "src");
        buffer->write(dst_offset, src, bytes);
    });
}

INF_API inf_status inf_buffer_read(const inf_buffer* src, uint64_t src_offset, void* dst, uint64_t bytes) {
    return guard("inf_buffer_read", [&] {
        const auto buffer = api::find_buffer(src, "src");
        api::check_range("src_offset", src_offset, bytes, buffer->size());
        if (bytes == 0) {
            return;
        }
        api::require_pointer(dst, "dst");
        buffer->read(src_offset, dst, bytes);
    });
}

INF_API inf_status inf_buffer_copy(inf_buffer* dst, uint64_t dst_offset, const inf_buffer* src, uint64_t src_offset,
                                   uint64_t bytes) {
    return guard("inf_buffer_copy", [&] {
        const auto to = api::find_buffer(dst, "dst");
        const auto from = api::find_buffer(src, "src");
        api::check_range("dst_offset", dst_offset, bytes, to->size());
        api::check_range("src_offset", src_offset, bytes, from->size());
        if (bytes == 0 || (to == from && dst_offset == src_offset)) {
            return;
        }
        to->copy_from(dst_offset, *from, src_offset, bytes);
    });
}

INF_API inf_status inf_buffer_fill(inf_buffer* dst, uint64_t dst_offset, const void* pattern, uint32_t pattern_bytes,
                                   uint64_t count) {
    return guard("inf_buffer_fill", [&] {
        const auto buffer = api::find_buffer(dst, "dst");
        if (pattern_bytes != 1 && pattern_bytes != 2 && pattern_bytes != 4 && pattern_bytes != 8) {
            fail(INF_STATUS_INVALID_ARGUMENT, "pattern_bytes (", pattern_bytes, ") must be 1, 2, 4 or 8");
        }
        if (count > UINT64_MAX / pattern_bytes) {
            fail(INF_STATUS_OUT_OF_RANGE, "count (", count, ") * pattern_bytes (", pattern_bytes,
                 ") overflows 64 bits");
        }
        api::check_range("dst_offset", dst_offset, count * pattern_bytes, buffer->size(), "count * pattern_bytes");
        if (count == 0) {
            return;
        }
        api::require_pointer(pattern, "pattern");
        std::uint64_t value = 0;
        std::memcpy(&value, pattern, pattern_bytes);
        buffer->fill(dst_offset, value, pattern_bytes, count);
    });
}

}  // extern "C"
