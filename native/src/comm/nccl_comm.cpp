#include "comm/nccl_comm.h"

#include <dlfcn.h>

#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "core/log.h"
#include "core/status.h"
#include "kv/page_pool.h"

// What a GPU run must verify (none of it has run here: no GPU, no NCCL on the build machine):
//  - ncclCommInitRank over MPI and in-process bootstraps, 2+ ranks on one and on several nodes;
//  - the grouped send / receive below under the step exchange's pattern (all ranks send, then receive);
//  - device binding through the driver API (cuCtxSetCurrent of the primary context) from several threads.
// Known limits: a receive synchronises the device (it waits for the sends issued in its group, so for the
// peers' matching receives); patterns where a rank's receive depends on a peer that first waits on a third
// rank may serialise or, in the worst case, stall until those ranks post their receives. Destruction waits
// for issued sends without a timeout.

namespace inf {

namespace {

// ---- the handful of NCCL and CUDA driver declarations used (written here, from the public docs) ----------

struct NcclUniqueId {
    char internal[128];  // NCCL_UNIQUE_ID_BYTES
};
using NcclHandle = void*;   // ncclComm_t: an opaque pointer
using CudaStream = void*;   // cudaStream_t; null = the legacy default stream
using NcclResult = int;     // ncclResult_t; 0 = ncclSuccess
constexpr int kNcclInt8 = 0;  // ncclDataType_t ncclInt8: bytes

struct NcclApi {
    NcclResult (*get_unique_id)(NcclUniqueId*);
    NcclResult (*comm_init_rank)(NcclHandle*, int, NcclUniqueId, int);
    NcclResult (*send)(const void*, std::size_t, int, int, NcclHandle, CudaStream);
    NcclResult (*recv)(void*, std::size_t, int, int, NcclHandle, CudaStream);
    NcclResult (*comm_destroy)(NcclHandle);
    const char* (*error_string)(NcclResult);
    NcclResult (*group_start)();
    NcclResult (*group_end)();
};

// CUDA driver API: NCCL works on the current device of the calling thread, and the core has no CUDA
// runtime (the CUDA plug-in links it statically), so the device's primary context is made current here.
using CuResult = int;  // CUresult; 0 = CUDA_SUCCESS
struct CudaDriverApi {
    CuResult (*init)(unsigned);
    CuResult (*device_get)(int*, int);
    CuResult (*primary_ctx_retain)(void**, int);
    CuResult (*primary_ctx_release)(int);
    CuResult (*ctx_set_current)(void*);
};

std::string dl_error() {
    const char* text = dlerror();
    return text != nullptr ? text : "unknown dynamic loader error";
}

template <class Fn>
bool bind(void* library, const char* name, Fn& out, std::string& error) {
    void* symbol = dlsym(library, name);
    if (symbol == nullptr) {
        error = cat("symbol ", name, " missing: ", dl_error());
        return false;
    }
    static_assert(sizeof out == sizeof symbol);
    std::memcpy(&out, &symbol, sizeof out);
    return true;
}

struct Loaded {
    NcclApi nccl{};
    CudaDriverApi cuda{};
    std::string error;  // empty when both loaded
};

Loaded load() {
    Loaded loaded;
    const char* env = std::getenv("INFINITE_NCCL_LIBRARY");
    const std::string nccl_name = env != nullptr && env[0] != '\0' ? env : "libnccl.so.2";
    // RTLD_LOCAL: NCCL's symbols stay out of the global namespace. Never closed.
    void* nccl = dlopen(nccl_name.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (nccl == nullptr) {
        loaded.error = cat("NCCL communicator unavailable: cannot load ", nccl_name, ": ", dl_error());
        return loaded;
    }
    std::string reason;
    NcclApi& n = loaded.nccl;
    if (!bind(nccl, "ncclGetUniqueId", n.get_unique_id, reason) ||
        !bind(nccl, "ncclCommInitRank", n.comm_init_rank, reason) || !bind(nccl, "ncclSend", n.send, reason) ||
        !bind(nccl, "ncclRecv", n.recv, reason) || !bind(nccl, "ncclCommDestroy", n.comm_destroy, reason) ||
        !bind(nccl, "ncclGetErrorString", n.error_string, reason) ||
        !bind(nccl, "ncclGroupStart", n.group_start, reason) || !bind(nccl, "ncclGroupEnd", n.group_end, reason)) {
        loaded.error = cat("NCCL communicator unavailable: ", nccl_name, " (NCCL 2.7 or later is needed): ", reason);
        return loaded;
    }
    void* cuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (cuda == nullptr) {
        loaded.error = cat("NCCL communicator unavailable: cannot load libcuda.so.1: ", dl_error());
        return loaded;
    }
    CudaDriverApi& c = loaded.cuda;
    if (!bind(cuda, "cuInit", c.init, reason) || !bind(cuda, "cuDeviceGet", c.device_get, reason) ||
        !bind(cuda, "cuDevicePrimaryCtxRetain", c.primary_ctx_retain, reason) ||
        !bind(cuda, "cuDevicePrimaryCtxRelease_v2", c.primary_ctx_release, reason) ||
        !bind(cuda, "cuCtxSetCurrent", c.ctx_set_current, reason)) {
        loaded.error = cat("NCCL communicator unavailable: libcuda.so.1: ", reason);
    }
    return loaded;
}

const Loaded& loaded() {
    static const Loaded* result = new Loaded(load());  // once per process; never destroyed
    return *result;
}

// The header that announces each device message on the bootstrap.
struct Header {
    std::int32_t tag;
    std::int32_t reserved;
    std::uint64_t bytes;
};

class NcclComm final : public Communicator {
public:
    NcclComm(std::shared_ptr<Communicator> bootstrap, std::shared_ptr<Device> device)
        : Communicator(bootstrap->rank(), bootstrap->size()),
          api_(loaded().nccl),
          cuda_(loaded().cuda),
          bootstrap_(std::move(bootstrap)),
          device_(std::move(device)) {
        set_timeout_ms(bootstrap_->timeout_ms());
        int cu_device = 0;
        cu_check(cuda_.init(0), "cuInit");
        cu_check(cuda_.device_get(&cu_device, device_->ordinal()), "cuDeviceGet");
        cu_check(cuda_.primary_ctx_retain(&context_, cu_device), "cuDevicePrimaryCtxRetain");
        cu_device_ = cu_device;
        try {
            NcclUniqueId id{};
            if (rank() == 0) {
                nccl_check(api_.get_unique_id(&id), "ncclGetUniqueId");
                for (std::int32_t peer = 1; peer < size(); ++peer) {
                    bootstrap_->send(peer, kNcclIdTag, &id, sizeof id);
                }
            } else {
                const std::uint64_t got = bootstrap_->recv(0, kNcclIdTag, &id, sizeof id);
                if (got != sizeof id) {
                    fail(INF_STATUS_PEER_FAILED, "peer 0 sent a NCCL unique id of ", got, " bytes, not ", sizeof id);
                }
            }
            bind_device();
            nccl_check(api_.comm_init_rank(&comm_, size(), id, rank()), "ncclCommInitRank");
        } catch (...) {
            cuda_.primary_ctx_release(cu_device_);
            throw;
        }
    }

    ~NcclComm() override {
        try {
            std::lock_guard lock(mutex_);
            bind_device();
            flush_sends();  // a peer may still receive them
            device_->synchronize();
        } catch (const std::exception& error) {
            log(INF_LOG_LEVEL_WARNING, "NCCL communicator of rank ", rank(), ": ", error.what());
        }
        api_.comm_destroy(comm_);
        cuda_.primary_ctx_release(cu_device_);
    }

    inf_comm_kind kind() const noexcept override { return INF_COMM_KIND_NCCL; }

    void send(std::int32_t, std::int32_t, const void*, std::uint64_t) override { host_unsupported(); }
    std::uint64_t probe(std::int32_t, std::int32_t) override { host_unsupported(); }
    std::uint64_t recv(std::int32_t, std::int32_t, void*, std::uint64_t) override { host_unsupported(); }

    // The data is copied into a staging block on the device at once (so ptr may be reused on return) and
    // the header goes out on the bootstrap; the NCCL send itself is issued with this rank's next receive,
    // in one NCCL group, so two ranks that both send before they receive cannot block each other's stream.
    void send_device(std::int32_t peer, std::int32_t tag, const Device& device, const void* ptr,
                     std::uint64_t bytes) override {
        check_address(peer, tag);
        check_device(device);
        DeviceMemory staging(*device_, bytes);
        if (bytes > 0) {
            device_->backend().copy_within(device_->ordinal(), staging.data(), ptr, bytes);
        }
        std::lock_guard lock(mutex_);
        const Header header{tag, 0, bytes};
        bootstrap_->send(peer, kNcclHeaderTag, &header, sizeof header);
        pending_.push_back({peer, std::move(staging), bytes});
        count_sent(bytes);
    }

    // Reads the headers from peer in order; messages of other tags that come first are received into
    // staging blocks and kept for later receives (NCCL delivers one peer's messages only in order).
    void recv_device(std::int32_t peer, std::int32_t tag, const Device& device, void* ptr,
                     std::uint64_t bytes) override {
        check_address(peer, tag);
        check_device(device);
        std::lock_guard lock(mutex_);
        auto& held = held_[{peer, tag}];
        while (held.empty()) {
            Header header{};
            const std::uint64_t got = bootstrap_->recv(peer, kNcclHeaderTag, &header, sizeof header);
            if (got != sizeof header || header.tag < 0 || header.tag > kMaxTag) {
                fail(INF_STATUS_PEER_FAILED, "peer ", peer, " sent a malformed NCCL message header");
            }
            Held message{DeviceMemory(*device_, header.bytes), header.bytes};
            bind_device();
            nccl_check(api_.group_start(), "ncclGroupStart");
            issue_sends();
            if (header.bytes > 0) {
                nccl_check(api_.recv(message.memory.data(), static_cast<std::size_t>(header.bytes), kNcclInt8, peer,
                                     comm_, nullptr),
                           "ncclRecv");
            }
            nccl_check(api_.group_end(), "ncclGroupEnd");
            device_->synchronize();  // the receive (and the sends issued with it) completed
            sent_.clear();
            held_[{peer, header.tag}].push_back(std::move(message));
        }
        Held& front = held.front();
        if (front.bytes != bytes) {
            fail(INF_STATUS_OUT_OF_RANGE, "the next message from peer ", peer, " with tag ", tag, " is ", front.bytes,
                 " bytes, but bytes (", bytes, ") were asked for; they must be equal");
        }
        if (bytes > 0) {
            device_->backend().copy_within(device_->ordinal(), ptr, front.memory.data(), bytes);
        }
        held.pop_front();
        count_received(bytes);
    }

private:
    struct Pending {
        std::int32_t peer;
        DeviceMemory memory;
        std::uint64_t bytes;
    };
    struct Held {
        DeviceMemory memory;
        std::uint64_t bytes;
    };

    [[noreturn]] static void host_unsupported() {
        fail(INF_STATUS_UNSUPPORTED,
             "a NCCL communicator moves device memory only (device buffers); send host bytes over its bootstrap "
             "communicator");
    }

    void check_device(const Device& device) const {
        if (!device.same_device(*device_)) {
            fail(INF_STATUS_DEVICE_MISMATCH, "the buffer lives on ", device.label(), ", but this NCCL communicator is ",
                 "on ", device_->label());
        }
    }

    void bind_device() {
        cu_check(cuda_.ctx_set_current(context_), "cuCtxSetCurrent");
    }

    // Enqueues the pending sends (inside the caller's NCCL group); their blocks live until the group is done.
    void issue_sends() {
        for (Pending& send : pending_) {
            if (send.bytes > 0) {
                nccl_check(api_.send(send.memory.data(), static_cast<std::size_t>(send.bytes), kNcclInt8, send.peer,
                                     comm_, nullptr),
                           "ncclSend");
            }
            sent_.push_back(std::move(send));
        }
        pending_.clear();
    }

    void flush_sends() {
        if (pending_.empty()) {
            return;
        }
        nccl_check(api_.group_start(), "ncclGroupStart");
        issue_sends();
        nccl_check(api_.group_end(), "ncclGroupEnd");
    }

    void nccl_check(NcclResult result, const char* what) const {
        if (result != 0) {
            fail(INF_STATUS_DEVICE_ERROR, what, " failed on ", device_->label(), ": ", api_.error_string(result),
                 " (ncclResult ", result, ")");
        }
    }

    void cu_check(CuResult result, const char* what) const {
        if (result != 0) {
            fail(INF_STATUS_DEVICE_ERROR, what, " failed for ", device_->label(), " (CUresult ", result, ")");
        }
    }

    const NcclApi& api_;
    const CudaDriverApi& cuda_;
    std::shared_ptr<Communicator> bootstrap_;
    std::shared_ptr<Device> device_;
    void* context_ = nullptr;
    int cu_device_ = 0;
    NcclHandle comm_ = nullptr;
    std::mutex mutex_;  // one NCCL operation at a time on this communicator (NCCL requires issue order)
    std::vector<Pending> pending_;  // sends announced, not yet issued
    std::vector<Pending> sent_;     // issued, kept until the device synchronised
    std::map<std::pair<std::int32_t, std::int32_t>, std::deque<Held>> held_;
};

}  // namespace

std::shared_ptr<Communicator> create_nccl_communicator(std::shared_ptr<Communicator> bootstrap,
                                                       std::shared_ptr<Device> device) {
    if (device->kind() != INF_DEVICE_KIND_CUDA) {
        fail(INF_STATUS_INVALID_ARGUMENT, "device (", device->label(),
             ") is not a CUDA device: a NCCL communicator moves GPU memory");
    }
    const Loaded& library = loaded();
    if (!library.error.empty()) {
        fail(INF_STATUS_BACKEND_UNAVAILABLE, library.error);
    }
    return std::make_shared<NcclComm>(std::move(bootstrap), std::move(device));
}

}  // namespace inf
