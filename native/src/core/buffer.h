// The object behind inf_buffer: bytes on one device.
//
// A buffer shares ownership of its device, so the device object (and its backend context) lives until
// the last buffer on it is gone, whatever order the C caller destroys handles in. Offsets and sizes are
// checked by the API layer before they reach these methods.
#pragma once

#include <cstdint>
#include <memory>

#include "core/device.h"

namespace inf {

class Buffer {
public:
    // Allocates bytes (> 0) on device.
    Buffer(std::shared_ptr<Device> device, std::uint64_t bytes);
    // Frees the memory; safe on any thread (the backend selects the device itself).
    ~Buffer();
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;

    const Device& device() const noexcept { return *device_; }
    std::uint64_t size() const noexcept { return size_; }
    // The backend's address of the first byte (host memory only for a host_accessible() backend).
    void* data() const noexcept { return data_; }

    void write(std::uint64_t offset, const void* src, std::uint64_t bytes);
    void read(std::uint64_t offset, void* dst, std::uint64_t bytes) const;
    void fill(std::uint64_t offset, std::uint64_t pattern, std::uint32_t pattern_bytes, std::uint64_t count);

    // Copies from src (same or another buffer, same or another device). Overlap within one buffer is fine.
    void copy_from(std::uint64_t dst_offset, const Buffer& src, std::uint64_t src_offset, std::uint64_t bytes);

private:
    void* at(std::uint64_t offset) const noexcept { return static_cast<unsigned char*>(data_) + offset; }

    std::shared_ptr<Device> device_;
    void* data_;
    std::uint64_t size_;
};

}  // namespace inf
