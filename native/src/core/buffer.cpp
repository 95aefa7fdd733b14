#include "core/buffer.h"

#include "core/log.h"
#include "core/status.h"

namespace inf {

Buffer::Buffer(std::shared_ptr<Device> device, std::uint64_t bytes)
    : device_(std::move(device)), data_(device_->backend().allocate(device_->ordinal(), bytes)), size_(bytes) {
    log(INF_LOG_LEVEL_DEBUG, "buffer of ", bytes, " bytes allocated on ", device_->label());
}

Buffer::~Buffer() {
    device_->backend().deallocate(device_->ordinal(), data_, size_);
    log(INF_LOG_LEVEL_DEBUG, "buffer of ", size_, " bytes freed on ", device_->label());
}

void Buffer::write(std::uint64_t offset, const void* src, std::uint64_t bytes) {
    device_->backend().copy_from_host(device_->ordinal(), at(offset), src, bytes);
}

void Buffer::read(std::uint64_t offset, void* dst, std::uint64_t bytes) const {
    device_->backend().copy_to_host(device_->ordinal(), dst, at(offset), bytes);
}

void Buffer::fill(std::uint64_t offset, std::uint64_t pattern, std::uint32_t pattern_bytes, std::uint64_t count) {
    device_->backend().fill(device_->ordinal(), at(offset), pattern, pattern_bytes, count);
}

void Buffer::copy_from(std::uint64_t dst_offset, const Buffer& src, std::uint64_t src_offset, std::uint64_t bytes) {
    const Device& to = *device_;
    const Device& from = *src.device_;
    void* dst = at(dst_offset);
    const void* source = src.at(src_offset);
    if (to.same_device(from)) {
        to.backend().copy_within(to.ordinal(), dst, source, bytes);
    } else if (to.backend().host_accessible()) {
        // Device -> host memory: the source backend copies straight into the destination buffer.
        from.backend().copy_to_host(from.ordinal(), dst, source, bytes);
    } else if (from.backend().host_accessible()) {
        to.backend().copy_from_host(to.ordinal(), dst, source, bytes);
    } else if (&to.backend() == &from.backend()) {
        to.backend().copy_peer(to.ordinal(), dst, from.ordinal(), source, bytes);
    } else {
        // Two different non-host backends: none exist yet (CPU and CUDA are the only kinds).
        fail(INF_STATUS_UNSUPPORTED, "copy from ", from.label(), " to ", to.label(), " is not supported");
    }
}

}  // namespace inf
