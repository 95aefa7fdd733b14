// The object behind inf_comm: one instance's endpoint in a group that exchanges queries, partial attention
// results and KV pages (DistAttention across instances). Kinds: in-process (inproc_comm.h), MPI
// (mpi_comm.h, over the libinfinite_mpi.so plug-in), NCCL (nccl_comm.h, libnccl.so.2 loaded at run time).
//
// Semantics every kind keeps (the step exchange relies on them):
//  - send never waits for the receiver: the bytes are copied or queued, so any order of sends and receives
//    among instances completes (no deadlock by construction);
//  - messages of one (source, tag) arrive in the order sent;
//  - a receive waits at most timeout_ms, then throws Error(INF_STATUS_TIMEOUT) naming the peer, the tag and
//    the wait; a peer known to be gone is Error(INF_STATUS_PEER_FAILED) at once.
// Thread-safe. Errors are thrown as inf::Error; the exports convert them.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "infinite/infinite.h"

namespace inf {

class Device;

// Tags at or above this are the library's (step exchange, page migration framing); users get 0 .. 16383.
inline constexpr std::int32_t kReservedTagBase = 16384;
inline constexpr std::int32_t kMaxTag = 32767;

class Communicator {
public:
    virtual ~Communicator() = default;
    Communicator(const Communicator&) = delete;
    Communicator& operator=(const Communicator&) = delete;

    virtual inf_comm_kind kind() const noexcept = 0;
    std::int32_t rank() const noexcept { return rank_; }
    std::int32_t size() const noexcept { return size_; }
    std::int32_t timeout_ms() const noexcept { return timeout_ms_.load(); }
    void set_timeout_ms(std::int32_t ms) noexcept { timeout_ms_.store(ms); }

    // Host memory. Throw on a bad peer / tag (INVALID_ARGUMENT naming it), timeout, or failed peer.
    virtual void send(std::int32_t peer, std::int32_t tag, const void* data, std::uint64_t bytes) = 0;
    // Length of the next message from (peer, tag), waiting for it; the message stays queued.
    virtual std::uint64_t probe(std::int32_t peer, std::int32_t tag) = 0;
    // Receives the next message from (peer, tag) into data; returns its length. Longer than capacity:
    // OUT_OF_RANGE naming both lengths, and the message stays queued.
    virtual std::uint64_t recv(std::int32_t peer, std::int32_t tag, void* data, std::uint64_t capacity) = 0;

    // Device memory (ptr on device). Default: staged through host memory; NCCL overrides.
    virtual void send_device(std::int32_t peer, std::int32_t tag, const Device& device, const void* ptr,
                             std::uint64_t bytes);
    virtual void recv_device(std::int32_t peer, std::int32_t tag, const Device& device, void* ptr, std::uint64_t bytes);

    // The next whole message from (peer, tag), resized to fit (probe + recv).
    void recv_message(std::int32_t peer, std::int32_t tag, std::vector<std::byte>& out);

    inf_comm_info info() const noexcept;

    // The checks of send / recv / probe on their own (INVALID_ARGUMENT naming "peer" / "tag"), for callers
    // that must refuse a bad address before preparing a message (page migration).
    void check_address(std::int32_t peer, std::int32_t tag) const {
        check_peer(peer);
        check_tag(tag);
    }

protected:
    Communicator(std::int32_t rank, std::int32_t size) : rank_(rank), size_(size) {}
    // Shared argument checks for subclasses: INVALID_ARGUMENT naming "peer" / "tag".
    void check_peer(std::int32_t peer) const;
    static void check_tag(std::int32_t tag);
    void count_sent(std::uint64_t bytes) noexcept { bytes_sent_ += bytes; ++messages_sent_; }
    void count_received(std::uint64_t bytes) noexcept { bytes_received_ += bytes; ++messages_received_; }

private:
    std::int32_t rank_;
    std::int32_t size_;
    std::atomic<std::int32_t> timeout_ms_{30000};
    std::atomic<std::uint64_t> bytes_sent_{0}, bytes_received_{0}, messages_sent_{0}, messages_received_{0};
};

}  // namespace inf
