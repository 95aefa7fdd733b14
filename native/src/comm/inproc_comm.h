// In-process communicators: the instances of one process, each with its endpoint in an InprocGroup.
//
// Every rank has a mailbox: one FIFO per (source, tag). send copies the bytes into the receiver's mailbox
// and returns (never waits); recv / probe wait on the receiver's condition variable. A rank moves through
// three states: not joined yet (messages to it queue up, receives from it wait), alive, and gone (its
// endpoint was destroyed: sends to it and receives from it, once nothing it sent is left, fail at once
// with PEER_FAILED). A gone rank may join again with a fresh, empty mailbox.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "comm/communicator.h"

namespace inf {

class InprocGroup {
public:
    // Largest group (inf_comm_group_create's bound).
    static constexpr std::int32_t kMaxSize = 1024;

    // size must be 1 .. kMaxSize (INVALID_ARGUMENT naming "group_size").
    explicit InprocGroup(std::int32_t size);
    InprocGroup(const InprocGroup&) = delete;
    InprocGroup& operator=(const InprocGroup&) = delete;

    std::int32_t size() const noexcept { return static_cast<std::int32_t>(boxes_.size()); }

private:
    friend class InprocComm;

    enum class State : int { not_joined, alive, gone };

    struct Mailbox {
        std::mutex mutex;
        std::condition_variable arrived;
        // Key: source << 16 | tag.
        std::unordered_map<std::uint32_t, std::deque<std::vector<std::byte>>> queues;
        // Written under this mailbox's mutex, read under the reader's own mailbox mutex (hence atomic).
        std::atomic<State> state{State::not_joined};
    };

    std::vector<std::unique_ptr<Mailbox>> boxes_;
};

class InprocComm final : public Communicator {
public:
    // Joins rank (0 .. size-1, INVALID_ARGUMENT naming "rank"; a rank alive already is INVALID_ARGUMENT).
    InprocComm(std::shared_ptr<InprocGroup> group, std::int32_t rank);
    // Marks the rank gone and wakes every waiting receiver of the group.
    ~InprocComm() override;

    inf_comm_kind kind() const noexcept override { return INF_COMM_KIND_INPROC; }
    void send(std::int32_t peer, std::int32_t tag, const void* data, std::uint64_t bytes) override;
    std::uint64_t probe(std::int32_t peer, std::int32_t tag) override;
    std::uint64_t recv(std::int32_t peer, std::int32_t tag, void* data, std::uint64_t capacity) override;

private:
    using Queue = std::deque<std::vector<std::byte>>;
    // Waits (the lock held on this rank's mailbox) until (peer, tag) has a message, and returns its queue.
    // TIMEOUT / PEER_FAILED otherwise.
    Queue& wait_for(std::unique_lock<std::mutex>& lock, std::int32_t peer, std::int32_t tag);

    std::shared_ptr<InprocGroup> group_;
    InprocGroup::Mailbox& box_;
};

}  // namespace inf
