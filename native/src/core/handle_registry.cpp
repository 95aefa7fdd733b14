#include "core/handle_registry.h"

#include <mutex>

#include "core/status.h"

namespace inf {

namespace {

// Bits 60..62 set: a non-canonical x86-64 / AArch64 address, so dereferencing a handle as a pointer
// faults immediately. Bits 0..3 hold the kind, the rest a counter.
constexpr std::uintptr_t kHandleTag = std::uintptr_t{0x7} << 60;
constexpr unsigned kKindBits = 4;

}  // namespace

const char* handle_kind_name(HandleKind kind) noexcept {
    switch (kind) {
        case HandleKind::device: return "device";
        case HandleKind::buffer: return "buffer";
        case HandleKind::page_pool: return "page pool";
        case HandleKind::model: return "model";
        case HandleKind::comm: return "communicator";
        case HandleKind::comm_group: return "communicator group";
    }
    return "unknown";
}

HandleRegistry& HandleRegistry::instance() {
    static HandleRegistry* registry = new HandleRegistry();
    return *registry;
}

std::uintptr_t HandleRegistry::add(HandleKind kind, std::shared_ptr<void> object, std::uint64_t bytes) {
    std::unique_lock lock(mutex_);
    const std::uintptr_t handle = kHandleTag | (next_id_++ << kKindBits) | static_cast<std::uintptr_t>(kind);
    entries_.emplace(handle, Entry{kind, std::move(object), bytes});
    switch (kind) {
        case HandleKind::device: ++counts_.devices; break;
        case HandleKind::buffer:
            ++counts_.buffers;
            counts_.buffer_bytes += bytes;
            break;
        case HandleKind::page_pool: ++counts_.page_pools; break;
        case HandleKind::model: ++counts_.models; break;
        case HandleKind::comm: ++counts_.comms; break;
        case HandleKind::comm_group: ++counts_.comm_groups; break;
    }
    return handle;
}

const HandleRegistry::Entry& HandleRegistry::lookup(std::uintptr_t handle, HandleKind kind,
                                                    const char* argument) const {
    if (handle == 0) {
        fail(INF_STATUS_NULL_POINTER, argument, " is null");
    }
    const auto it = entries_.find(handle);
    if (it == entries_.end()) {
        fail(INF_STATUS_INVALID_HANDLE, argument, " (", Hex{handle}, ") is not a live ", handle_kind_name(kind),
             " handle: it was destroyed already, or it was not created by this library");
    }
    if (it->second.kind != kind) {
        fail(INF_STATUS_INVALID_HANDLE, argument, " (", Hex{handle}, ") is a ", handle_kind_name(it->second.kind),
             " handle, not a ", handle_kind_name(kind), " handle");
    }
    return it->second;
}

std::shared_ptr<void> HandleRegistry::find(std::uintptr_t handle, HandleKind kind, const char* argument) const {
    std::shared_lock lock(mutex_);
    return lookup(handle, kind, argument).object;
}

std::shared_ptr<void> HandleRegistry::remove(std::uintptr_t handle, HandleKind kind, const char* argument) {
    std::unique_lock lock(mutex_);
    const Entry& entry = lookup(handle, kind, argument);
    std::shared_ptr<void> object = entry.object;
    switch (kind) {
        case HandleKind::device: --counts_.devices; break;
        case HandleKind::buffer:
            --counts_.buffers;
            counts_.buffer_bytes -= entry.bytes;
            break;
        case HandleKind::page_pool: --counts_.page_pools; break;
        case HandleKind::model: --counts_.models; break;
        case HandleKind::comm: --counts_.comms; break;
        case HandleKind::comm_group: --counts_.comm_groups; break;
    }
    entries_.erase(handle);
    return object;
}

LiveCounts HandleRegistry::counts() const {
    std::shared_lock lock(mutex_);
    return counts_;
}

}  // namespace inf
