// Exports: communicators (in-process, MPI, NCCL), their messages and page migration between instances.
// The communicators check peer and tag themselves and name them; the exports check handles and pointers.
#include <cstddef>
#include <vector>

#include "api/checks.h"
#include "comm/comm_handle.h"
#include "comm/inproc_comm.h"
#include "comm/mpi_comm.h"
#include "comm/nccl_comm.h"
#include "kv/page_pool.h"

using namespace inf;

namespace {

std::shared_ptr<InprocGroup> find_group(const inf_comm_group* handle, const char* argument) {
    return find_handle<InprocGroup>(handle, HandleKind::comm_group, argument);
}

std::shared_ptr<PagePool> find_pool(const inf_page_pool* handle, const char* argument) {
    return find_handle<PagePool>(handle, HandleKind::page_pool, argument);
}

// Registered as the base class, so find_communicator's cast from void is exact for every kind.
inf_comm* register_comm(std::shared_ptr<Communicator> comm) {
    return reinterpret_cast<inf_comm*>(HandleRegistry::instance().add(HandleKind::comm, std::move(comm)));
}

void clear(inf_comm** out_comm) {
    if (out_comm != nullptr) {
        *out_comm = nullptr;  // a failed call never leaves a stale handle behind
    }
}

}  // namespace

extern "C" {

INF_API inf_status inf_comm_group_create(int32_t group_size, inf_comm_group** out_group) {
    return guard("inf_comm_group_create", [&] {
        if (out_group != nullptr) {
            *out_group = nullptr;
        }
        api::require_pointer(out_group, "out_group");
        auto group = std::make_shared<InprocGroup>(group_size);
        *out_group = reinterpret_cast<inf_comm_group*>(
            HandleRegistry::instance().add(HandleKind::comm_group, std::move(group)));
    });
}

INF_API inf_status inf_comm_group_destroy(inf_comm_group* group) {
    return guard("inf_comm_group_destroy", [&] {
        if (group == nullptr) {
            return;
        }
        // Endpoints share the group's state, so it lives on until the last of them is destroyed.
        HandleRegistry::instance().remove(reinterpret_cast<std::uintptr_t>(group), HandleKind::comm_group, "group");
    });
}

INF_API inf_status inf_comm_create_inproc(inf_comm_group* group, int32_t rank, inf_comm** out_comm) {
    return guard("inf_comm_create_inproc", [&] {
        clear(out_comm);
        auto shared = find_group(group, "group");
        api::require_pointer(out_comm, "out_comm");
        *out_comm = register_comm(std::make_shared<InprocComm>(std::move(shared), rank));
    });
}

INF_API inf_status inf_comm_create_mpi(inf_comm** out_comm) {
    return guard("inf_comm_create_mpi", [&] {
        clear(out_comm);
        api::require_pointer(out_comm, "out_comm");
        *out_comm = register_comm(create_mpi_communicator());
    });
}

INF_API inf_status inf_comm_create_nccl(inf_comm* bootstrap, inf_device* device, inf_comm** out_comm) {
    return guard("inf_comm_create_nccl", [&] {
        clear(out_comm);
        auto boot = find_communicator(bootstrap, "bootstrap");
        auto owner = api::find_device(device, "device");
        api::require_pointer(out_comm, "out_comm");
        *out_comm = register_comm(create_nccl_communicator(boot, std::move(owner)));
    });
}

INF_API inf_status inf_comm_destroy(inf_comm* comm) {
    return guard("inf_comm_destroy", [&] {
        if (comm == nullptr) {
            return;
        }
        // Freed here, or when a call still using it on another thread returns: the peers learn then that
        // this rank is gone.
        HandleRegistry::instance().remove(reinterpret_cast<std::uintptr_t>(comm), HandleKind::comm, "comm");
    });
}

INF_API inf_status inf_comm_get_info(const inf_comm* comm, inf_comm_info* out_info) {
    return guard("inf_comm_get_info", [&] {
        const auto object = find_communicator(comm, "comm");
        api::check_versioned(out_info, "out_info", "inf_comm_info");
        api::write_versioned(out_info, object->info());
    });
}

INF_API inf_status inf_comm_set_timeout(inf_comm* comm, int32_t timeout_ms) {
    return guard("inf_comm_set_timeout", [&] {
        const auto object = find_communicator(comm, "comm");
        if (timeout_ms <= 0) {
            fail(INF_STATUS_INVALID_ARGUMENT, "timeout_ms (", timeout_ms, ") must be > 0");
        }
        object->set_timeout_ms(timeout_ms);
    });
}

INF_API inf_status inf_comm_send(inf_comm* comm, int32_t peer, int32_t tag, const void* data, uint64_t bytes) {
    return guard("inf_comm_send", [&] {
        const auto object = find_communicator(comm, "comm");
        object->check_address(peer, tag);
        if (bytes > 0) {
            api::require_pointer(data, "data");
        }
        object->send(peer, tag, data, bytes);
    });
}

INF_API inf_status inf_comm_recv(inf_comm* comm, int32_t peer, int32_t tag, void* data, uint64_t capacity,
                                 uint64_t* out_bytes) {
    return guard("inf_comm_recv", [&] {
        if (out_bytes != nullptr) {
            *out_bytes = 0;
        }
        const auto object = find_communicator(comm, "comm");
        object->check_address(peer, tag);
        if (capacity > 0) {
            api::require_pointer(data, "data");
        }
        api::require_pointer(out_bytes, "out_bytes");
        *out_bytes = object->recv(peer, tag, data, capacity);
    });
}

INF_API inf_status inf_comm_probe(inf_comm* comm, int32_t peer, int32_t tag, uint64_t* out_bytes) {
    return guard("inf_comm_probe", [&] {
        if (out_bytes != nullptr) {
            *out_bytes = 0;
        }
        const auto object = find_communicator(comm, "comm");
        object->check_address(peer, tag);
        api::require_pointer(out_bytes, "out_bytes");
        *out_bytes = object->probe(peer, tag);
    });
}

INF_API inf_status inf_comm_send_buffer(inf_comm* comm, int32_t peer, int32_t tag, const inf_buffer* buffer,
                                        uint64_t offset, uint64_t bytes) {
    return guard("inf_comm_send_buffer", [&] {
        const auto object = find_communicator(comm, "comm");
        object->check_address(peer, tag);
        const auto source = api::find_buffer(buffer, "buffer");
        api::check_range("offset", offset, bytes, source->size());
        object->send_device(peer, tag, source->device(), static_cast<const std::byte*>(source->data()) + offset,
                            bytes);
    });
}

INF_API inf_status inf_comm_recv_buffer(inf_comm* comm, int32_t peer, int32_t tag, inf_buffer* buffer,
                                        uint64_t offset, uint64_t bytes) {
    return guard("inf_comm_recv_buffer", [&] {
        const auto object = find_communicator(comm, "comm");
        object->check_address(peer, tag);
        const auto target = api::find_buffer(buffer, "buffer");
        api::check_range("offset", offset, bytes, target->size());
        object->recv_device(peer, tag, target->device(), static_cast<std::byte*>(target->data()) + offset, bytes);
    });
}

INF_API inf_status inf_page_pool_send_pages(inf_comm* comm, int32_t peer, int32_t tag, const inf_page_pool* pool,
                                            const int32_t* pages, int32_t count) {
    return guard("inf_page_pool_send_pages", [&] {
        const auto object = find_communicator(comm, "comm");
        object->check_address(peer, tag);
        const auto source = find_pool(pool, "pool");
        std::vector<std::byte> message;
        source->pack_pages(pages, count, message);
        object->send(peer, tag, message.data(), message.size());
    });
}

INF_API inf_status inf_page_pool_recv_pages(inf_comm* comm, int32_t peer, int32_t tag, inf_page_pool* pool,
                                            const int32_t* pages, int32_t count) {
    return guard("inf_page_pool_recv_pages", [&] {
        const auto object = find_communicator(comm, "comm");
        object->check_address(peer, tag);
        const auto target = find_pool(pool, "pool");
        // The destination pages are checked before the message is taken, so bad arguments leave it queued;
        // a message whose shape differs from the pool's is consumed and refused.
        target->check_unpack_pages(pages, count);
        std::vector<std::byte> message;
        object->recv_message(peer, tag, message);
        target->unpack_pages(message.data(), message.size(), pages, count);
    });
}

}  // extern "C"
