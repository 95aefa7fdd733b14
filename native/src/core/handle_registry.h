// The registry of live handles: every handle the C ABI hands out is a key here.
//
// Handles are not addresses of the objects but ids that are never reused (with high bits set so that a
// handle mistaken for a pointer faults at once). So a destroyed handle, a handle of another kind or a
// garbage value is detected by a lookup and never dereferenced, even after the memory of the object it
// once named has been reused. A lookup returns shared ownership, so a concurrent destroy on another
// thread cannot free an object while a call is using it.
#pragma once

#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <unordered_map>

namespace inf {

enum class HandleKind : std::uint32_t { device = 1, buffer = 2, page_pool = 3, model = 4, comm = 5, comm_group = 6 };

const char* handle_kind_name(HandleKind kind) noexcept;

struct LiveCounts {
    std::int64_t devices = 0;
    std::int64_t buffers = 0;
    std::uint64_t buffer_bytes = 0;
    std::int64_t page_pools = 0;
    std::int64_t models = 0;
    std::int64_t comms = 0;
    std::int64_t comm_groups = 0;
};

class HandleRegistry {
public:
    // The process-wide registry. Never destroyed, so objects still live at exit are never freed
    // behind the back of a backend that may already be shutting down.
    static HandleRegistry& instance();

    // Registers object and returns its new handle. bytes counts towards LiveCounts::buffer_bytes.
    std::uintptr_t add(HandleKind kind, std::shared_ptr<void> object, std::uint64_t bytes = 0);

    // The object behind handle. Throws inf::Error: NULL_POINTER when handle is 0, INVALID_HANDLE when it
    // is not live or names another kind. argument names the parameter in the message.
    std::shared_ptr<void> find(std::uintptr_t handle, HandleKind kind, const char* argument) const;

    // Unregisters handle (same checks as find) and returns the object: the caller drops it outside the
    // registry lock, so a slow free (cudaFree) does not block other threads' lookups.
    std::shared_ptr<void> remove(std::uintptr_t handle, HandleKind kind, const char* argument);

    LiveCounts counts() const;

private:
    struct Entry {
        HandleKind kind;
        std::shared_ptr<void> object;
        std::uint64_t bytes;
    };

    const Entry& lookup(std::uintptr_t handle, HandleKind kind, const char* argument) const;

    mutable std::shared_mutex mutex_;
    std::unordered_map<std::uintptr_t, Entry> entries_;
    std::uint64_t next_id_ = 1;
    LiveCounts counts_;
};

// Typed helpers over the process-wide registry.
template <class T>
std::shared_ptr<T> find_handle(const void* handle, HandleKind kind, const char* argument) {
    return std::static_pointer_cast<T>(
        HandleRegistry::instance().find(reinterpret_cast<std::uintptr_t>(handle), kind, argument));
}

}  // namespace inf
