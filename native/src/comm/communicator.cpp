#include "comm/communicator.h"

#include <vector>

#include "core/backend.h"
#include "core/device.h"
#include "core/status.h"

namespace inf {

void Communicator::check_peer(std::int32_t peer) const {
    if (peer < 0 || peer >= size_) {
        fail(INF_STATUS_INVALID_ARGUMENT, "peer (", peer, ") is not a rank of the group (0 .. ", size_ - 1, ")");
    }
}

void Communicator::check_tag(std::int32_t tag) {
    if (tag < 0 || tag > kMaxTag) {
        fail(INF_STATUS_INVALID_ARGUMENT, "tag (", tag, ") is outside 0 .. ", kMaxTag);
    }
}

void Communicator::recv_message(std::int32_t peer, std::int32_t tag, std::vector<std::byte>& out) {
    // Another thread receiving on the same (peer, tag) may take the probed message first and leave a longer
    // one at the head: then probe again (the recv left that one queued).
    for (;;) {
        const std::uint64_t bytes = probe(peer, tag);
        out.resize(static_cast<std::size_t>(bytes));
        try {
            const std::uint64_t got = recv(peer, tag, out.data(), bytes);
            out.resize(static_cast<std::size_t>(got));
            return;
        } catch (const Error& error) {
            if (error.status() != INF_STATUS_OUT_OF_RANGE) {
                throw;
            }
        }
    }
}

void Communicator::send_device(std::int32_t peer, std::int32_t tag, const Device& device, const void* ptr,
                               std::uint64_t bytes) {
    Backend& backend = device.backend();
    if (backend.host_accessible() || bytes == 0) {
        send(peer, tag, ptr, bytes);
        return;
    }
    // Staged: the message owns its bytes once send returns, so the host copy can go right after.
    std::vector<std::byte> host(static_cast<std::size_t>(bytes));
    backend.copy_to_host(device.ordinal(), host.data(), ptr, bytes);
    send(peer, tag, host.data(), bytes);
}

void Communicator::recv_device(std::int32_t peer, std::int32_t tag, const Device& device, void* ptr,
                               std::uint64_t bytes) {
    // The length is checked before anything is taken, so a mismatch leaves the message queued.
    const std::uint64_t length = probe(peer, tag);
    if (length != bytes) {
        fail(INF_STATUS_OUT_OF_RANGE, "the next message from peer ", peer, " with tag ", tag, " is ", length,
             " bytes, but bytes (", bytes, ") were asked for; they must be equal");
    }
    Backend& backend = device.backend();
    if (backend.host_accessible() || bytes == 0) {
        recv(peer, tag, ptr, bytes);
        return;
    }
    std::vector<std::byte> host(static_cast<std::size_t>(bytes));
    recv(peer, tag, host.data(), bytes);
    backend.copy_from_host(device.ordinal(), ptr, host.data(), bytes);
}

inf_comm_info Communicator::info() const noexcept {
    inf_comm_info out{};
    out.size = sizeof(inf_comm_info);
    out.kind = kind();
    out.rank = rank_;
    out.group_size = size_;
    out.timeout_ms = timeout_ms_.load();
    out.bytes_sent = bytes_sent_.load();
    out.bytes_received = bytes_received_.load();
    out.messages_sent = messages_sent_.load();
    out.messages_received = messages_received_.load();
    return out;
}

}  // namespace inf
