#include "comm/mpi_comm.h"

#include <dlfcn.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "comm/mpi/mpi_plugin_abi.h"
#include "core/cuda_loader.h"
#include "core/log.h"
#include "core/plugin_library.h"
#include "core/status.h"

namespace inf {

namespace {

constexpr const char* kPluginFile = "libinfinite_mpi.so";
constexpr const char* kPluginEnv = "INFINITE_MPI_PLUGIN";

using Clock = std::chrono::steady_clock;

// What every MPI endpoint of the process shares: the plug-in, the one mutex that serialises all MPI calls,
// and who finalises. Never destroyed (MPI may outlive static destruction order).
struct MpiRuntime {
    const inf_mpi_plugin_api* api = nullptr;
    std::string load_error;
    std::mutex mutex;
    int live = 0;
    bool initialized_here = false;
    bool unfinished_sends = false;  // a send never completed: finalising could hang, so it is skipped
};

std::string load_plugin(MpiRuntime& runtime) {
    // RTLD_GLOBAL: Open MPI dlopens its own components, which resolve libmpi's symbols from the global
    // namespace. Never closed: MPI cannot be unloaded and started again.
    const PluginLibrary library = open_plugin("MPI communicator", "MPI", kPluginFile, kPluginEnv,
                                              "it is built next to libinfinite.so where CMake finds MPI",
                                              INF_MPI_PLUGIN_ENTRY_NAME, RTLD_NOW | RTLD_GLOBAL);
    if (library.entry == nullptr) {
        return library.error;
    }
    const std::string& path = library.path;
    void* entry = library.entry;
    inf_mpi_plugin_get_fn get = nullptr;
    static_assert(sizeof get == sizeof entry);
    std::memcpy(&get, &entry, sizeof get);  // object pointer to function pointer, as POSIX allows
    const inf_mpi_plugin_api* api = get(INF_MPI_PLUGIN_ABI_VERSION);
    if (api == nullptr || api->abi_version != INF_MPI_PLUGIN_ABI_VERSION || api->size < sizeof(inf_mpi_plugin_api)) {
        return cat("MPI communicator unavailable: ", path, " does not implement MPI plug-in ABI version ",
                   INF_MPI_PLUGIN_ABI_VERSION, " (it comes from another build of Infinite than libinfinite.so)");
    }
    runtime.api = api;
    return {};
}

MpiRuntime& runtime() {
    static MpiRuntime* shared = [] {
        auto* created = new MpiRuntime();
        created->load_error = load_plugin(*created);
        return created;
    }();
    return *shared;
}

// Throws status with "<what>: <plug-in's reason>" unless status is OK.
void check(std::int32_t status, const char* error, const std::string& what) {
    if (status != INF_STATUS_OK) {
        fail(static_cast<inf_status>(status), what, ": ", error[0] != '\0' ? error : status_name(status));
    }
}

class MpiComm final : public Communicator {
public:
    MpiComm(MpiRuntime& shared, void* comm, std::int32_t rank, std::int32_t size)
        : Communicator(rank, size), runtime_(shared), comm_(comm) {}

    ~MpiComm() override {
        const inf_mpi_plugin_api& api = *runtime_.api;
        char error[INF_MPI_PLUGIN_ERROR_CAPACITY] = {};
        std::unique_lock lock(runtime_.mutex);
        // Sends still in flight finish first (a peer may be about to receive them), for at most the timeout.
        const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms());
        while (reap(error) && Clock::now() < deadline) {
            lock.unlock();
            std::this_thread::sleep_for(std::chrono::microseconds(200));
            lock.lock();
        }
        if (!pending_.empty()) {
            // Their buffers are leaked on purpose: MPI may still read them.
            log(INF_LOG_LEVEL_WARNING, "MPI communicator of rank ", rank(), ": ", pending_.size(),
                " sends not received by their peers within ", timeout_ms(), " ms are abandoned");
            for (auto& send : pending_) {
                send.buffer.release();
            }
            runtime_.unfinished_sends = true;
        }
        // Matched messages nobody received are taken and dropped, which releases them in MPI.
        for (auto& [key, queue] : matched_) {
            for (const Matched& message : queue) {
                std::vector<std::byte> sink(static_cast<std::size_t>(message.bytes));
                api.mrecv(message.handle, sink.data(), message.bytes, error, sizeof error);
            }
        }
        if (api.close(comm_, error, sizeof error) != INF_STATUS_OK) {
            log(INF_LOG_LEVEL_WARNING, "MPI communicator of rank ", rank(), ": ", error);
        }
        if (--runtime_.live == 0 && runtime_.initialized_here && !runtime_.unfinished_sends) {
            if (api.finalize(error, sizeof error) != INF_STATUS_OK) {
                log(INF_LOG_LEVEL_WARNING, "MPI_Finalize: ", error);
            }
            runtime_.initialized_here = false;
        }
    }

    inf_comm_kind kind() const noexcept override { return INF_COMM_KIND_MPI; }

    void send(std::int32_t peer, std::int32_t tag, const void* data, std::uint64_t bytes) override {
        check_peer(peer);
        check_tag(tag);
        if (bytes > static_cast<std::uint64_t>(INT_MAX)) {
            fail(INF_STATUS_UNSUPPORTED, "bytes (", bytes, ") exceeds the largest MPI message (", INT_MAX,
                 " bytes); split it");
        }
        if (bytes > 0 && data == nullptr) {
            fail(INF_STATUS_NULL_POINTER, "data is null");
        }
        // Copied so the caller's memory may change at once; MPI reads the copy until the send completes.
        Pending send{nullptr, std::make_unique<std::byte[]>(static_cast<std::size_t>(bytes > 0 ? bytes : 1))};
        if (bytes > 0) {
            std::memcpy(send.buffer.get(), data, static_cast<std::size_t>(bytes));
        }
        char error[INF_MPI_PLUGIN_ERROR_CAPACITY] = {};
        {
            std::lock_guard lock(runtime_.mutex);
            reap(error);
            check(runtime_.api->isend(comm_, send.buffer.get(), bytes, peer, tag, &send.request, error, sizeof error),
                  error, cat("send to peer ", peer, " with tag ", tag));
            pending_.push_back(std::move(send));
        }
        count_sent(bytes);
    }

    std::uint64_t probe(std::int32_t peer, std::int32_t tag) override {
        check_peer(peer);
        check_tag(tag);
        std::unique_lock lock(runtime_.mutex);
        return wait_for(lock, peer, tag).front().bytes;
    }

    std::uint64_t recv(std::int32_t peer, std::int32_t tag, void* data, std::uint64_t capacity) override {
        check_peer(peer);
        check_tag(tag);
        std::unique_lock lock(runtime_.mutex);
        std::deque<Matched>& queue = wait_for(lock, peer, tag);
        const Matched message = queue.front();
        if (message.bytes > capacity) {
            fail(INF_STATUS_OUT_OF_RANGE, "the next message from peer ", peer, " with tag ", tag, " is ", message.bytes,
                 " bytes, more than capacity (", capacity, "); it stays queued");
        }
        if (message.bytes > 0 && data == nullptr) {
            fail(INF_STATUS_NULL_POINTER, "data is null");
        }
        queue.pop_front();  // mrecv frees the handle whatever it returns
        char error[INF_MPI_PLUGIN_ERROR_CAPACITY] = {};
        check(runtime_.api->mrecv(message.handle, data, message.bytes, error, sizeof error), error,
              cat("receive from peer ", peer, " with tag ", tag));
        lock.unlock();
        count_received(message.bytes);
        return message.bytes;
    }

private:
    struct Pending {
        void* request;
        std::unique_ptr<std::byte[]> buffer;
    };
    // A message MPI matched for this endpoint (by a probe) that is not received yet: it is out of MPI's
    // matching, so it waits here, in order, until recv takes it.
    struct Matched {
        void* handle;
        std::uint64_t bytes;
    };

    // Frees the buffers of completed sends; true while some are still in flight. The runtime mutex is held.
    bool reap(char* error) {
        for (auto it = pending_.begin(); it != pending_.end();) {
            std::int32_t done = 0;
            if (runtime_.api->test(it->request, &done, error, INF_MPI_PLUGIN_ERROR_CAPACITY) != INF_STATUS_OK) {
                log(INF_LOG_LEVEL_WARNING, "MPI communicator of rank ", rank(), ": ", error);
                ++it;
                continue;
            }
            it = done != 0 ? pending_.erase(it) : std::next(it);
        }
        return !pending_.empty();
    }

    // Polls (releasing the MPI mutex between polls, so other threads' calls go on) until (peer, tag) has a
    // matched message; returns its queue with the lock held. TIMEOUT naming peer, tag and the wait.
    std::deque<Matched>& wait_for(std::unique_lock<std::mutex>& lock, std::int32_t peer, std::int32_t tag) {
        const std::int32_t timeout = timeout_ms();
        const auto deadline = Clock::now() + std::chrono::milliseconds(timeout);
        std::deque<Matched>& queue = matched_[{peer, tag}];
        char error[INF_MPI_PLUGIN_ERROR_CAPACITY] = {};
        for (int polls = 0;; ++polls) {
            reap(error);
            if (!queue.empty()) {
                return queue;
            }
            std::int32_t found = 0;
            Matched message{nullptr, 0};
            check(runtime_.api->improbe(comm_, peer, tag, &found, &message.handle, &message.bytes, error, sizeof error),
                  error, cat("probe for a message from peer ", peer, " with tag ", tag));
            if (found != 0) {
                queue.push_back(message);
                return queue;
            }
            if (Clock::now() >= deadline) {
                fail(INF_STATUS_TIMEOUT, "no message from peer ", peer, " with tag ", tag, " within ", timeout, " ms");
            }
            lock.unlock();
            // Spin briefly (a reply is often microseconds away), then back off to 1 ms between polls.
            if (polls < 64) {
                std::this_thread::yield();
            } else {
                std::this_thread::sleep_for(std::chrono::microseconds(polls < 1000 ? 20 : 1000));
            }
            lock.lock();
        }
    }

    MpiRuntime& runtime_;
    void* comm_;
    std::vector<Pending> pending_;                                         // under runtime_.mutex
    std::map<std::pair<std::int32_t, std::int32_t>, std::deque<Matched>> matched_;  // under runtime_.mutex
};

}  // namespace

std::shared_ptr<Communicator> create_mpi_communicator() {
    MpiRuntime& shared = runtime();
    if (shared.api == nullptr) {
        fail(INF_STATUS_BACKEND_UNAVAILABLE, shared.load_error);
    }
    std::lock_guard lock(shared.mutex);
    void* comm = nullptr;
    std::int32_t rank = 0;
    std::int32_t size = 0;
    std::int32_t initialized_here = 0;
    char error[INF_MPI_PLUGIN_ERROR_CAPACITY] = {};
    const std::int32_t status = shared.api->open(&comm, &rank, &size, &initialized_here, error, sizeof error);
    if (initialized_here != 0) {
        shared.initialized_here = true;
        log(INF_LOG_LEVEL_INFO, "MPI initialised by Infinite: ", shared.api->library_version());
    }
    check(status, error, "MPI communicator unavailable");
    auto created = std::make_shared<MpiComm>(shared, comm, rank, size);
    ++shared.live;
    return created;
}

}  // namespace inf
