// A stand-in for libinfinite_cuda.so in tests: implements plugin_abi.h over host memory, so the core's
// CUDA paths (loading, error messages, ordinals, CPU<->GPU and GPU<->GPU copies, buffer lifetime) run
// on machines without a GPU.
//
// The "device pointers" it hands out are host addresses moved into non-canonical address space: if the
// core ever dereferenced one instead of going through the plug-in, the test would crash at once. Every
// call checks that its pointers lie inside a live allocation of the ordinal it names; a violation is
// refused and counted (tests assert the count stays 0).
//
// INFINITE_FAKE_CUDA selects the behaviour: "" (two devices of 64 MiB), "init_error", "no_devices",
// "abi_mismatch", "model" (as "" plus a host model step, fake_cuda_model_step.h).
#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>

#include "core/plugin_abi.h"
#include "fake_cuda_model_step.h"
#include "fake_cuda_stats.h"

namespace {

constexpr std::uintptr_t kShift = std::uintptr_t{0x5} << 60;
constexpr std::uint64_t kDeviceMemory = std::uint64_t{64} << 20;
constexpr std::int32_t kDevices = 2;

struct Allocation {
    std::int32_t ordinal;
    std::uint64_t bytes;
    unsigned char* host;
};

std::mutex g_mutex;
std::map<std::uintptr_t, Allocation> g_allocations;  // by fake base address
std::uint64_t g_used[kDevices] = {};
std::atomic<std::int64_t> g_bad_calls{0};
std::atomic<std::int64_t> g_synchronize_calls{0};
std::atomic<std::int64_t> g_peer_copies{0};

std::string mode() {
    const char* value = std::getenv("INFINITE_FAKE_CUDA");
    return value != nullptr ? value : "";
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
inf_status refuse(inf_status status, char* error, const char* format, ...) {
    va_list args;
    va_start(args, format);
    std::vsnprintf(error, INF_PLUGIN_ERROR_CAPACITY, format, args);
    va_end(args);
    return status;
}

// A misuse by the core: counted, and reported as INVALID_ARGUMENT.
#define FAKE_BAD_CALL(error, ...) (++g_bad_calls, refuse(INF_STATUS_INVALID_ARGUMENT, error, __VA_ARGS__))

bool valid_ordinal(std::int32_t ordinal) {
    return ordinal >= 0 && ordinal < kDevices;
}

// The host address of [pointer, pointer + bytes), which must lie in one allocation of ordinal.
unsigned char* resolve(std::int32_t ordinal, const void* pointer, std::uint64_t bytes) {
    const auto address = reinterpret_cast<std::uintptr_t>(pointer);
    std::lock_guard lock(g_mutex);
    auto it = g_allocations.upper_bound(address);
    if (it == g_allocations.begin()) {
        return nullptr;
    }
    --it;
    const Allocation& allocation = it->second;
    const std::uint64_t offset = address - it->first;
    if (allocation.ordinal != ordinal || offset > allocation.bytes || bytes > allocation.bytes - offset) {
        return nullptr;
    }
    return allocation.host + offset;
}

inf_status fake_init(std::int32_t* out_count, char* error, std::size_t) {
    const std::string m = mode();
    if (m == "init_error") {
        return refuse(INF_STATUS_BACKEND_UNAVAILABLE, error,
                      "cudaGetDeviceCount: cudaErrorInsufficientDriver: CUDA driver version is insufficient for "
                      "CUDA runtime version");
    }
    *out_count = m == "no_devices" ? 0 : kDevices;
    return INF_STATUS_OK;
}

inf_status fake_device_info(std::int32_t ordinal, inf_plugin_device_info* out, char* error, std::size_t) {
    if (!valid_ordinal(ordinal)) {
        return FAKE_BAD_CALL(error, "device_info: no fake device %d", ordinal);
    }
    std::memset(out, 0, sizeof *out);
    std::snprintf(out->name, sizeof out->name, "Fake CUDA Device %d", ordinal);
    std::lock_guard lock(g_mutex);
    out->total_memory = kDeviceMemory;
    out->free_memory = kDeviceMemory - g_used[ordinal];
    out->compute_units = 4 + ordinal;
    out->capability_major = 9;
    out->capability_minor = 0;
    return INF_STATUS_OK;
}

inf_status fake_allocate(std::int32_t ordinal, std::uint64_t bytes, void** out, char* error, std::size_t) {
    if (!valid_ordinal(ordinal) || bytes == 0) {
        return FAKE_BAD_CALL(error, "allocate: ordinal %d, %llu bytes", ordinal, static_cast<unsigned long long>(bytes));
    }
    std::lock_guard lock(g_mutex);
    if (bytes > kDeviceMemory - g_used[ordinal]) {
        return refuse(INF_STATUS_OUT_OF_MEMORY, error,
                      "cudaMalloc(%llu bytes) on cuda:%d: cudaErrorMemoryAllocation: out of memory",
                      static_cast<unsigned long long>(bytes), ordinal);
    }
    auto* host = static_cast<unsigned char*>(std::aligned_alloc(256, (bytes + 255) / 256 * 256));
    if (host == nullptr) {
        return refuse(INF_STATUS_OUT_OF_MEMORY, error, "fake allocate: host allocation failed");
    }
    const std::uintptr_t fake = reinterpret_cast<std::uintptr_t>(host) + kShift;
    g_allocations[fake] = Allocation{ordinal, bytes, host};
    g_used[ordinal] += bytes;
    *out = reinterpret_cast<void*>(fake);
    return INF_STATUS_OK;
}

inf_status fake_deallocate(std::int32_t ordinal, void* pointer, char* error, std::size_t) {
    std::lock_guard lock(g_mutex);
    const auto it = g_allocations.find(reinterpret_cast<std::uintptr_t>(pointer));
    if (it == g_allocations.end() || it->second.ordinal != ordinal) {
        return FAKE_BAD_CALL(error, "deallocate: %p is not an allocation on cuda:%d", pointer, ordinal);
    }
    g_used[ordinal] -= it->second.bytes;
    std::free(it->second.host);
    g_allocations.erase(it);
    return INF_STATUS_OK;
}

inf_status fake_copy_from_host(std::int32_t ordinal, void* dst, const void* src, std::uint64_t bytes, char* error,
                               std::size_t) {
    unsigned char* to = resolve(ordinal, dst, bytes);
    if (to == nullptr || src == nullptr) {
        return FAKE_BAD_CALL(error, "copy_from_host: bad range on cuda:%d", ordinal);
    }
    std::memcpy(to, src, bytes);
    return INF_STATUS_OK;
}

inf_status fake_copy_to_host(std::int32_t ordinal, void* dst, const void* src, std::uint64_t bytes, char* error,
                             std::size_t) {
    const unsigned char* from = resolve(ordinal, src, bytes);
    if (from == nullptr || dst == nullptr) {
        return FAKE_BAD_CALL(error, "copy_to_host: bad range on cuda:%d", ordinal);
    }
    std::memcpy(dst, from, bytes);
    return INF_STATUS_OK;
}

inf_status fake_copy_within(std::int32_t ordinal, void* dst, const void* src, std::uint64_t bytes, char* error,
                            std::size_t) {
    unsigned char* to = resolve(ordinal, dst, bytes);
    const unsigned char* from = resolve(ordinal, src, bytes);
    if (to == nullptr || from == nullptr) {
        return FAKE_BAD_CALL(error, "copy_within: bad range on cuda:%d", ordinal);
    }
    std::memmove(to, from, bytes);
    return INF_STATUS_OK;
}

inf_status fake_copy_peer(std::int32_t dst_ordinal, void* dst, std::int32_t src_ordinal, const void* src,
                          std::uint64_t bytes, char* error, std::size_t) {
    unsigned char* to = resolve(dst_ordinal, dst, bytes);
    const unsigned char* from = resolve(src_ordinal, src, bytes);
    if (to == nullptr || from == nullptr || dst_ordinal == src_ordinal) {
        return FAKE_BAD_CALL(error, "copy_peer: bad range from cuda:%d to cuda:%d", src_ordinal, dst_ordinal);
    }
    ++g_peer_copies;
    std::memmove(to, from, bytes);
    return INF_STATUS_OK;
}

inf_status fake_fill(std::int32_t ordinal, void* dst, std::uint64_t pattern, std::uint32_t pattern_bytes,
                     std::uint64_t count, char* error, std::size_t) {
    if (pattern_bytes != 1 && pattern_bytes != 2 && pattern_bytes != 4 && pattern_bytes != 8) {
        return FAKE_BAD_CALL(error, "fill: pattern_bytes %u", pattern_bytes);
    }
    unsigned char* to = resolve(ordinal, dst, count * pattern_bytes);
    if (to == nullptr) {
        return FAKE_BAD_CALL(error, "fill: bad range on cuda:%d", ordinal);
    }
    unsigned char bytes[8];
    std::memcpy(bytes, &pattern, sizeof bytes);
    for (std::uint64_t i = 0; i < count * pattern_bytes; ++i) {
        to[i] = bytes[i % pattern_bytes];
    }
    return INF_STATUS_OK;
}

inf_status fake_synchronize(std::int32_t ordinal, char* error, std::size_t) {
    if (!valid_ordinal(ordinal)) {
        return FAKE_BAD_CALL(error, "synchronize: no fake device %d", ordinal);
    }
    ++g_synchronize_calls;
    return INF_STATUS_OK;
}

unsigned char* translate(std::int32_t ordinal, const void* pointer, std::uint64_t bytes) {
    return resolve(ordinal, pointer, bytes);
}

inf_status fake_step_workspace_bytes(std::int32_t ordinal, const inf_plugin_model_step* params, std::uint64_t* out,
                                     char* error, std::size_t) {
    if (!valid_ordinal(ordinal)) {
        return FAKE_BAD_CALL(error, "model_step_workspace_bytes: no fake device %d", ordinal);
    }
    *out = fake_model_step_workspace_bytes(*params);
    return INF_STATUS_OK;
}

inf_status fake_step(std::int32_t ordinal, const inf_plugin_model_step* params, char* error, std::size_t) {
    if (!valid_ordinal(ordinal)) {
        return FAKE_BAD_CALL(error, "model_step: no fake device %d", ordinal);
    }
    bool bad = false;
    const inf_status status = fake_model_step(ordinal, *params, translate, error, &bad);
    if (bad) {
        ++g_bad_calls;
    }
    return status;
}

const inf_plugin_api kApi = {
    INF_PLUGIN_ABI_VERSION,
    sizeof(inf_plugin_api),
    "fake CUDA plug-in for tests",
    fake_init,
    fake_device_info,
    fake_allocate,
    fake_deallocate,
    fake_copy_from_host,
    fake_copy_to_host,
    fake_copy_within,
    fake_copy_peer,
    fake_fill,
    fake_synchronize,
    nullptr,  // kv_append: the paged-KV kernels are not faked (the core reports INF_STATUS_UNSUPPORTED)
    nullptr,  // attention_workspace_bytes
    nullptr,  // attention
    nullptr,  // attention_merge
    nullptr,  // page_select_workspace_bytes
    nullptr,  // page_select
    nullptr,  // model_step_workspace_bytes: no model step either (inf_model_step reports INF_STATUS_UNSUPPORTED)
    nullptr,  // model_step
};

// "model" mode: the same table with the host model step.
const inf_plugin_api kModelApi = {
    INF_PLUGIN_ABI_VERSION,
    sizeof(inf_plugin_api),
    "fake CUDA plug-in for tests (host model step)",
    fake_init,
    fake_device_info,
    fake_allocate,
    fake_deallocate,
    fake_copy_from_host,
    fake_copy_to_host,
    fake_copy_within,
    fake_copy_peer,
    fake_fill,
    fake_synchronize,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    fake_step_workspace_bytes,
    fake_step,
};

}  // namespace

extern "C" __attribute__((visibility("default"))) const inf_plugin_api* inf_cuda_plugin_get(std::uint32_t abi_version) {
    if (mode() == "abi_mismatch" || abi_version != INF_PLUGIN_ABI_VERSION) {
        return nullptr;
    }
    return mode() == "model" ? &kModelApi : &kApi;
}

extern "C" __attribute__((visibility("default"))) void inf_fake_cuda_stats(inf_fake_cuda_stats_t* out) {
    std::lock_guard lock(g_mutex);
    out->live_allocations = static_cast<std::int64_t>(g_allocations.size());
    out->bytes_used[0] = g_used[0];
    out->bytes_used[1] = g_used[1];
    out->bad_calls = g_bad_calls.load();
    out->synchronize_calls = g_synchronize_calls.load();
    out->peer_copies = g_peer_copies.load();
}
