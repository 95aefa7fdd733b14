#include "comm/inproc_comm.h"

#include <chrono>
#include <cstring>

#include "core/status.h"

namespace inf {

namespace {

std::uint32_t queue_key(std::int32_t source, std::int32_t tag) noexcept {
    return (static_cast<std::uint32_t>(source) << 16) | static_cast<std::uint32_t>(tag);
}

}  // namespace

InprocGroup::InprocGroup(std::int32_t size) {
    if (size < 1 || size > kMaxSize) {
        fail(INF_STATUS_INVALID_ARGUMENT, "group_size (", size, ") is outside 1 .. ", kMaxSize);
    }
    boxes_.reserve(static_cast<std::size_t>(size));
    for (std::int32_t r = 0; r < size; ++r) {
        boxes_.push_back(std::make_unique<Mailbox>());
    }
}

namespace {

InprocGroup& checked_group(const std::shared_ptr<InprocGroup>& group, std::int32_t rank) {
    if (rank < 0 || rank >= group->size()) {
        fail(INF_STATUS_INVALID_ARGUMENT, "rank (", rank, ") is not a rank of the group (0 .. ", group->size() - 1,
             ")");
    }
    return *group;
}

}  // namespace

InprocComm::InprocComm(std::shared_ptr<InprocGroup> group, std::int32_t rank)
    : Communicator(rank, checked_group(group, rank).size()),
      group_(std::move(group)),
      box_(*group_->boxes_[static_cast<std::size_t>(rank)]) {
    std::lock_guard lock(box_.mutex);
    const auto state = box_.state.load();
    if (state == InprocGroup::State::alive) {
        fail(INF_STATUS_INVALID_ARGUMENT, "rank (", rank, ") already has a live endpoint in this group");
    }
    if (state == InprocGroup::State::gone) {
        box_.queues.clear();  // a rejoining rank starts empty: what was sent to its old endpoint is void
    }
    box_.state.store(InprocGroup::State::alive);
}

InprocComm::~InprocComm() {
    {
        std::lock_guard lock(box_.mutex);
        box_.state.store(InprocGroup::State::gone);
        box_.queues.clear();  // nobody will read them
    }
    // Each receiver re-checks the state under its own mailbox lock, so taking that lock before notifying
    // means no waiter can miss the change.
    for (const auto& box : group_->boxes_) {
        if (box.get() != &box_) {
            std::lock_guard lock(box->mutex);
            box->arrived.notify_all();
        }
    }
}

void InprocComm::send(std::int32_t peer, std::int32_t tag, const void* data, std::uint64_t bytes) {
    check_peer(peer);
    check_tag(tag);
    if (bytes > 0 && data == nullptr) {
        fail(INF_STATUS_NULL_POINTER, "data is null");
    }
    // The copy is made before taking the receiver's lock, so a large message does not stall its receives.
    std::vector<std::byte> message(static_cast<std::size_t>(bytes));
    if (bytes > 0) {
        std::memcpy(message.data(), data, static_cast<std::size_t>(bytes));
    }
    InprocGroup::Mailbox& target = *group_->boxes_[static_cast<std::size_t>(peer)];
    {
        std::lock_guard lock(target.mutex);
        if (target.state.load() == InprocGroup::State::gone) {
            fail(INF_STATUS_PEER_FAILED, "peer ", peer, " is gone (its communicator was destroyed); tag ", tag);
        }
        target.queues[queue_key(rank(), tag)].push_back(std::move(message));
        target.arrived.notify_all();
    }
    count_sent(bytes);
}

InprocComm::Queue& InprocComm::wait_for(std::unique_lock<std::mutex>& lock, std::int32_t peer, std::int32_t tag) {
    check_peer(peer);
    check_tag(tag);
    const std::int32_t timeout = timeout_ms();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout);
    const InprocGroup::Mailbox& source = *group_->boxes_[static_cast<std::size_t>(peer)];
    Queue& queue = box_.queues[queue_key(peer, tag)];
    for (;;) {
        if (!queue.empty()) {
            return queue;
        }
        if (source.state.load() == InprocGroup::State::gone) {
            fail(INF_STATUS_PEER_FAILED, "peer ", peer, " is gone (its communicator was destroyed) with no message ",
                 "left for tag ", tag);
        }
        if (box_.arrived.wait_until(lock, deadline) == std::cv_status::timeout && queue.empty() &&
            source.state.load() != InprocGroup::State::gone) {
            fail(INF_STATUS_TIMEOUT, "no message from peer ", peer, " with tag ", tag, " within ", timeout, " ms");
        }
    }
}

std::uint64_t InprocComm::probe(std::int32_t peer, std::int32_t tag) {
    std::unique_lock lock(box_.mutex);
    return wait_for(lock, peer, tag).front().size();
}

std::uint64_t InprocComm::recv(std::int32_t peer, std::int32_t tag, void* data, std::uint64_t capacity) {
    std::vector<std::byte> message;
    {
        std::unique_lock lock(box_.mutex);
        Queue& queue = wait_for(lock, peer, tag);
        const std::uint64_t length = queue.front().size();
        if (length > capacity) {
            fail(INF_STATUS_OUT_OF_RANGE, "the next message from peer ", peer, " with tag ", tag, " is ", length,
                 " bytes, more than capacity (", capacity, "); it stays queued");
        }
        if (length > 0 && data == nullptr) {
            fail(INF_STATUS_NULL_POINTER, "data is null");
        }
        message = std::move(queue.front());
        queue.pop_front();
    }
    // Copied outside the lock: senders to this rank are not held up by a large copy.
    if (!message.empty()) {
        std::memcpy(data, message.data(), message.size());
    }
    count_received(message.size());
    return message.size();
}

}  // namespace inf
