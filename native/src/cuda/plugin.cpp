// The CUDA plug-in: implements plugin_abi.h with the CUDA runtime (linked statically).
//
// Every call that touches a device first makes it current (and restores the caller's device after), so
// any thread may call any function, e.g. free a buffer that another thread allocated on another GPU.
// All work goes to the legacy default stream, which orders it with every later copy on the device.
#include <cuda_runtime_api.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "core/plugin_abi.h"
#include "cuda/cuda_error.h"
#include "cuda/fill.h"
#include "cuda/model_step.h"
#include "cuda/paged_kv.h"
#include "cuda_build_config.h"

namespace inf::cuda {

namespace {

constexpr const char kDescription[] =
    "nvcc " INFINITE_NVCC_VERSION_STRING ", CUDA runtime linked statically, archs " INFINITE_CUDA_ARCHS_STRING;

// Makes ordinal the calling thread's device for the scope, then restores the previous one.
class DeviceScope {
public:
    DeviceScope() = default;
    DeviceScope(const DeviceScope&) = delete;
    DeviceScope& operator=(const DeviceScope&) = delete;
    ~DeviceScope() {
        if (changed_) {
            cudaSetDevice(previous_);
        }
    }
    cudaError_t enter(int ordinal) {
        cudaError_t error = cudaGetDevice(&previous_);
        if (error != cudaSuccess) {
            return error;
        }
        if (previous_ != ordinal) {
            error = cudaSetDevice(ordinal);
            changed_ = error == cudaSuccess;
        }
        return error;
    }

private:
    int previous_ = 0;
    bool changed_ = false;
};

// Enters the device or returns its error from the enclosing plug-in function.
#define INF_CUDA_ENTER(scope, ordinal, sink)                                                  \
    do {                                                                                      \
        const cudaError_t enter_error_ = (scope).enter(ordinal);                              \
        if (enter_error_ != cudaSuccess) {                                                    \
            return report((sink), enter_error_, "cudaSetDevice(%d)", static_cast<int>(ordinal)); \
        }                                                                                     \
    } while (0)

void format_version(char* out, std::size_t capacity, int version) {
    if (version <= 0) {
        std::snprintf(out, capacity, "not found");
    } else {
        std::snprintf(out, capacity, "CUDA %d.%d", version / 1000, (version % 1000) / 10);
    }
}

inf_status plugin_init(std::int32_t* out_device_count, char* error, std::size_t capacity) {
    const ErrorSink sink{error, capacity};
    int driver = 0;
    cudaDriverGetVersion(&driver);  // 0 when no driver is installed
    int count = 0;
    const cudaError_t status = cudaGetDeviceCount(&count);
    if (status != cudaSuccess) {
        char runtime_text[32];
        char driver_text[32];
        format_version(runtime_text, sizeof runtime_text, CUDART_VERSION);
        format_version(driver_text, sizeof driver_text, driver);
        report(sink, status, "cudaGetDeviceCount");
        const std::size_t used = std::strlen(error);
        std::snprintf(error + used, capacity - used, " (plug-in runtime: %s; driver: %s)",
                      runtime_text, driver_text);
        return INF_STATUS_BACKEND_UNAVAILABLE;  // whatever the runtime's reason, the backend cannot be used
    }
    *out_device_count = count;
    return INF_STATUS_OK;
}

inf_status plugin_device_info(std::int32_t ordinal, inf_plugin_device_info* out, char* error, std::size_t capacity) {
    const ErrorSink sink{error, capacity};
    cudaDeviceProp properties{};
    cudaError_t status = cudaGetDeviceProperties(&properties, ordinal);
    if (status != cudaSuccess) {
        return report(sink, status, "cudaGetDeviceProperties on cuda:%d", ordinal);
    }
    DeviceScope scope;
    INF_CUDA_ENTER(scope, ordinal, sink);
    std::size_t free_bytes = 0;
    std::size_t total_bytes = 0;
    status = cudaMemGetInfo(&free_bytes, &total_bytes);
    if (status != cudaSuccess) {
        return report(sink, status, "cudaMemGetInfo on cuda:%d", ordinal);
    }
    std::memset(out, 0, sizeof *out);
    // Longer names are cut; the core trims a cut UTF-8 sequence.
    const std::size_t length = strnlen(properties.name, sizeof properties.name);
    std::memcpy(out->name, properties.name, length < sizeof out->name ? length : sizeof out->name - 1);
    out->total_memory = properties.totalGlobalMem;
    out->free_memory = free_bytes;
    out->compute_units = properties.multiProcessorCount;
    out->capability_major = properties.major;
    out->capability_minor = properties.minor;
    return INF_STATUS_OK;
}

inf_status plugin_allocate(std::int32_t ordinal, std::uint64_t bytes, void** out_pointer, char* error,
                           std::size_t capacity) {
    const ErrorSink sink{error, capacity};
    DeviceScope scope;
    INF_CUDA_ENTER(scope, ordinal, sink);
    void* pointer = nullptr;
    const cudaError_t status = cudaMalloc(&pointer, bytes);  // 256-byte aligned at least
    if (status != cudaSuccess) {
        cudaGetLastError();  // an allocation failure must not stick to the next call
        return report(sink, status, "cudaMalloc(%llu bytes) on cuda:%d", static_cast<unsigned long long>(bytes),
                      ordinal);
    }
    *out_pointer = pointer;
    return INF_STATUS_OK;
}

inf_status plugin_deallocate(std::int32_t ordinal, void* pointer, char* error, std::size_t capacity) {
    const ErrorSink sink{error, capacity};
    DeviceScope scope;
    INF_CUDA_ENTER(scope, ordinal, sink);
    const cudaError_t status = cudaFree(pointer);
    if (status != cudaSuccess) {
        return report(sink, status, "cudaFree on cuda:%d", ordinal);
    }
    return INF_STATUS_OK;
}

inf_status copy(std::int32_t ordinal, void* dst, const void* src, std::uint64_t bytes, cudaMemcpyKind kind,
                const char* direction, char* error, std::size_t capacity) {
    const ErrorSink sink{error, capacity};
    DeviceScope scope;
    INF_CUDA_ENTER(scope, ordinal, sink);
    const cudaError_t status = cudaMemcpy(dst, src, bytes, kind);
    if (status != cudaSuccess) {
        return report(sink, status, "cudaMemcpy %s (%llu bytes) on cuda:%d", direction,
                      static_cast<unsigned long long>(bytes), ordinal);
    }
    return INF_STATUS_OK;
}

inf_status plugin_copy_from_host(std::int32_t ordinal, void* dst, const void* src, std::uint64_t bytes, char* error,
                                 std::size_t capacity) {
    return copy(ordinal, dst, src, bytes, cudaMemcpyHostToDevice, "host to device", error, capacity);
}

inf_status plugin_copy_to_host(std::int32_t ordinal, void* dst, const void* src, std::uint64_t bytes, char* error,
                               std::size_t capacity) {
    return copy(ordinal, dst, src, bytes, cudaMemcpyDeviceToHost, "device to host", error, capacity);
}

// cudaMemcpy does not promise memmove semantics, so overlapping ranges go through a scratch buffer in
// chunks, in the order that never overwrites source bytes before they are read.
inf_status plugin_copy_within(std::int32_t ordinal, void* dst, const void* src, std::uint64_t bytes, char* error,
                              std::size_t capacity) {
    const auto d = reinterpret_cast<std::uintptr_t>(dst);
    const auto s = reinterpret_cast<std::uintptr_t>(src);
    const bool overlap = d < s + bytes && s < d + bytes;
    if (!overlap) {
        return copy(ordinal, dst, src, bytes, cudaMemcpyDeviceToDevice, "device to device", error, capacity);
    }
    const ErrorSink sink{error, capacity};
    DeviceScope scope;
    INF_CUDA_ENTER(scope, ordinal, sink);
    constexpr std::uint64_t kChunk = std::uint64_t{32} << 20;
    const std::uint64_t chunk = bytes < kChunk ? bytes : kChunk;
    void* scratch = nullptr;
    cudaError_t status = cudaMalloc(&scratch, chunk);
    if (status != cudaSuccess) {
        cudaGetLastError();
        return report(sink, status, "cudaMalloc(%llu bytes) on cuda:%d for an overlapping copy",
                      static_cast<unsigned long long>(chunk), ordinal);
    }
    auto* out = static_cast<unsigned char*>(dst);
    const auto* in = static_cast<const unsigned char*>(src);
    // dst after src: copy from the end backwards; dst before src: from the start forwards.
    const bool backwards = d > s;
    for (std::uint64_t done = 0; done < bytes && status == cudaSuccess;) {
        const std::uint64_t n = bytes - done < chunk ? bytes - done : chunk;
        const std::uint64_t offset = backwards ? bytes - done - n : done;
        status = cudaMemcpy(scratch, in + offset, n, cudaMemcpyDeviceToDevice);
        if (status == cudaSuccess) {
            status = cudaMemcpy(out + offset, scratch, n, cudaMemcpyDeviceToDevice);
        }
        done += n;
    }
    const cudaError_t free_status = cudaFree(scratch);
    if (status == cudaSuccess) {
        status = free_status;
    }
    if (status != cudaSuccess) {
        return report(sink, status, "overlapping cudaMemcpy device to device (%llu bytes) on cuda:%d",
                      static_cast<unsigned long long>(bytes), ordinal);
    }
    return INF_STATUS_OK;
}

inf_status plugin_copy_peer(std::int32_t dst_ordinal, void* dst, std::int32_t src_ordinal, const void* src,
                            std::uint64_t bytes, char* error, std::size_t capacity) {
    const ErrorSink sink{error, capacity};
    // Goes over NVLink / PCIe peer access where enabled, else the runtime stages through the host.
    const cudaError_t status = cudaMemcpyPeer(dst, dst_ordinal, src, src_ordinal, bytes);
    if (status != cudaSuccess) {
        return report(sink, status, "cudaMemcpyPeer (%llu bytes) from cuda:%d to cuda:%d",
                      static_cast<unsigned long long>(bytes), src_ordinal, dst_ordinal);
    }
    return INF_STATUS_OK;
}

inf_status plugin_fill(std::int32_t ordinal, void* dst, std::uint64_t pattern, std::uint32_t pattern_bytes,
                       std::uint64_t count, char* error, std::size_t capacity) {
    const ErrorSink sink{error, capacity};
    DeviceScope scope;
    INF_CUDA_ENTER(scope, ordinal, sink);
    const cudaError_t status = launch_fill(dst, pattern, pattern_bytes, count);
    if (status != cudaSuccess) {
        return report(sink, status, "fill kernel (%llu x %u bytes) on cuda:%d", static_cast<unsigned long long>(count),
                      pattern_bytes, ordinal);
    }
    return INF_STATUS_OK;
}

inf_status plugin_synchronize(std::int32_t ordinal, char* error, std::size_t capacity) {
    const ErrorSink sink{error, capacity};
    DeviceScope scope;
    INF_CUDA_ENTER(scope, ordinal, sink);
    const cudaError_t status = cudaDeviceSynchronize();
    if (status != cudaSuccess) {
        return report(sink, status, "cudaDeviceSynchronize on cuda:%d", ordinal);
    }
    return INF_STATUS_OK;
}

// SM count and the opt-in shared memory limit of the current device (host-side attribute reads).
cudaError_t device_limits(int ordinal, int* sm_count, int* max_shared) {
    cudaError_t status = cudaDeviceGetAttribute(sm_count, cudaDevAttrMultiProcessorCount, ordinal);
    if (status == cudaSuccess && max_shared != nullptr) {
        status = cudaDeviceGetAttribute(max_shared, cudaDevAttrMaxSharedMemoryPerBlockOptin, ordinal);
    }
    return status;
}

// A kernel launcher's failure: an argument error (cudaErrorInvalidValue with a reason) is reported as
// INVALID_ARGUMENT, anything else as the runtime's error.
inf_status launch_failed(ErrorSink sink, cudaError_t status, const char* why, int ordinal) {
    if (why == nullptr) {
        why = "kernel launch";
    }
    if (status == cudaErrorInvalidValue) {
        cudaGetLastError();  // an argument error must not stick to the next call
        return report_status(sink, INF_STATUS_INVALID_ARGUMENT, "%s on cuda:%d", why, ordinal);
    }
    return report(sink, status, "%s on cuda:%d", why, ordinal);
}

inf_status plugin_kv_append(std::int32_t ordinal, const inf_kv_append_params* params, char* error,
                            std::size_t capacity) {
    const ErrorSink sink{error, capacity};
    DeviceScope scope;
    INF_CUDA_ENTER(scope, ordinal, sink);
    const char* why = nullptr;
    const cudaError_t status = launch_kv_append(*params, &why);
    return status == cudaSuccess ? INF_STATUS_OK : launch_failed(sink, status, why, ordinal);
}

inf_status plugin_attention_workspace_bytes(std::int32_t ordinal, const inf_attention_params* params,
                                            std::uint64_t* out_bytes, char* error, std::size_t capacity) {
    const ErrorSink sink{error, capacity};
    int sm_count = 0;
    const cudaError_t status = device_limits(ordinal, &sm_count, nullptr);
    if (status != cudaSuccess) {
        return report(sink, status, "cudaDeviceGetAttribute(MultiProcessorCount) on cuda:%d", ordinal);
    }
    *out_bytes = plan_attention(*params, sm_count).workspace_bytes;
    return INF_STATUS_OK;
}

// INFINITE_CUDA_PREFILL: "simt" forces the SIMT split-KV kernel, "mma" the tensor-core prefill kernel
// wherever it applies; anything else (or unset) lets launch_attention choose. Read at every call rather
// than once, so that a test can run the same inputs through both kernels in one process; nothing in
// the library sets it, and one getenv is small next to a launch.
PrefillMode prefill_mode() {
    const char* value = std::getenv("INFINITE_CUDA_PREFILL");
    if (value == nullptr) {
        return PrefillMode::kAuto;
    }
    if (std::strcmp(value, "simt") == 0) {
        return PrefillMode::kSimt;
    }
    if (std::strcmp(value, "mma") == 0) {
        return PrefillMode::kMma;
    }
    return PrefillMode::kAuto;
}

inf_status plugin_attention(std::int32_t ordinal, const inf_attention_params* params, char* error,
                            std::size_t capacity) {
    const ErrorSink sink{error, capacity};
    DeviceScope scope;
    INF_CUDA_ENTER(scope, ordinal, sink);
    int sm_count = 0;
    int max_shared = 0;
    cudaError_t status = device_limits(ordinal, &sm_count, &max_shared);
    if (status != cudaSuccess) {
        return report(sink, status, "cudaDeviceGetAttribute on cuda:%d", ordinal);
    }
    const char* why = nullptr;
    status = launch_attention(*params, sm_count, max_shared, prefill_mode(), &why);
    return status == cudaSuccess ? INF_STATUS_OK : launch_failed(sink, status, why, ordinal);
}

inf_status plugin_attention_merge(std::int32_t ordinal, const inf_attention_merge_params* params, char* error,
                                  std::size_t capacity) {
    const ErrorSink sink{error, capacity};
    DeviceScope scope;
    INF_CUDA_ENTER(scope, ordinal, sink);
    const char* why = nullptr;
    const cudaError_t status = launch_attention_merge(*params, &why);
    return status == cudaSuccess ? INF_STATUS_OK : launch_failed(sink, status, why, ordinal);
}

// Scratch for page selection scores: one grow-only device buffer per device, kept for the life of the
// process (freed never: the plug-in is never unloaded). The mutex is held across the launches that use
// it; the kernels of later calls queue behind them on the same legacy default stream, so a later call
// may reuse the buffer at once; growing it first waits for the device.
struct SelectScratch {
    std::mutex mutex;
    void* data = nullptr;
    std::uint64_t bytes = 0;
};
constexpr int kMaxScratchDevices = 64;
SelectScratch g_select_scratch[kMaxScratchDevices];

inf_status plugin_page_select_workspace_bytes(std::int32_t, const inf_page_select_params*, std::uint64_t* out_bytes,
                                              char*, std::size_t) {
    *out_bytes = 0;  // the plug-in keeps its own scratch (plugin_abi.h)
    return INF_STATUS_OK;
}

inf_status plugin_page_select(std::int32_t ordinal, const inf_page_select_params* params, char* error,
                              std::size_t capacity) {
    const ErrorSink sink{error, capacity};
    DeviceScope scope;
    INF_CUDA_ENTER(scope, ordinal, sink);
    const inf_page_select_params& p = *params;
    if (p.sequences <= 0) {
        return INF_STATUS_OK;
    }
    if (ordinal < 0 || ordinal >= kMaxScratchDevices) {
        return report_status(sink, INF_STATUS_UNSUPPORTED, "page_select on cuda:%d: at most %d devices", ordinal,
                             kMaxScratchDevices);
    }
    // The score array's size depends on page_starts[sequences], which lives on the device.
    std::int32_t total_entries = 0;
    cudaError_t status = cudaMemcpy(&total_entries, p.page_starts + p.sequences, sizeof total_entries,
                                    cudaMemcpyDeviceToHost);
    if (status != cudaSuccess) {
        return report(sink, status, "page_select: reading page_starts[sequences] on cuda:%d", ordinal);
    }
    if (total_entries < 0) {
        return report_status(sink, INF_STATUS_INVALID_ARGUMENT, "page_select on cuda:%d: page_starts[%d] is %d",
                             ordinal, p.sequences, total_entries);
    }
    const std::uint64_t needed = page_select_keys_bytes(p, total_entries);
    void* keys = nullptr;
    SelectScratch& scratch = g_select_scratch[ordinal];
    std::lock_guard<std::mutex> lock(scratch.mutex);
    if (needed > 0 && p.workspace != nullptr && p.workspace_bytes >= needed) {
        keys = p.workspace;
    } else if (needed > 0) {
        if (scratch.bytes < needed) {
            status = cudaDeviceSynchronize();  // earlier selections may still read the old buffer
            if (status == cudaSuccess && scratch.data != nullptr) {
                status = cudaFree(scratch.data);
            }
            scratch.data = nullptr;
            scratch.bytes = 0;
            if (status != cudaSuccess) {
                return report(sink, status, "page_select: freeing the score scratch on cuda:%d", ordinal);
            }
            const std::uint64_t grown = needed + needed / 4;
            status = cudaMalloc(&scratch.data, grown);
            if (status != cudaSuccess) {
                cudaGetLastError();
                scratch.data = nullptr;
                return report(sink, status, "page_select: cudaMalloc(%llu bytes) for scores on cuda:%d",
                              static_cast<unsigned long long>(grown), ordinal);
            }
            scratch.bytes = grown;
        }
        keys = scratch.data;
    }
    const char* why = nullptr;
    status = launch_page_select(p, total_entries, keys, &why);
    return status == cudaSuccess ? INF_STATUS_OK : launch_failed(sink, status, why, ordinal);
}

inf_status plugin_model_step_workspace_bytes(std::int32_t ordinal, const inf_plugin_model_step* params,
                                             std::uint64_t* out_bytes, char* error, std::size_t capacity) {
    const ErrorSink sink{error, capacity};
    int sm_count = 0;
    const cudaError_t status = device_limits(ordinal, &sm_count, nullptr);
    if (status != cudaSuccess) {
        return report(sink, status, "cudaDeviceGetAttribute(MultiProcessorCount) on cuda:%d", ordinal);
    }
    *out_bytes = model_step_workspace_bytes(*params, sm_count);
    return INF_STATUS_OK;
}

inf_status plugin_model_step(std::int32_t ordinal, const inf_plugin_model_step* params, char* error,
                             std::size_t capacity) {
    const ErrorSink sink{error, capacity};
    DeviceScope scope;
    INF_CUDA_ENTER(scope, ordinal, sink);
    int sm_count = 0;
    int max_shared = 0;
    const cudaError_t status = device_limits(ordinal, &sm_count, &max_shared);
    if (status != cudaSuccess) {
        return report(sink, status, "cudaDeviceGetAttribute on cuda:%d", ordinal);
    }
    return run_model_step(ordinal, *params, sm_count, max_shared, prefill_mode(), sink);
}

constexpr inf_plugin_api kApi = {
    INF_PLUGIN_ABI_VERSION,
    sizeof(inf_plugin_api),
    kDescription,
    plugin_init,
    plugin_device_info,
    plugin_allocate,
    plugin_deallocate,
    plugin_copy_from_host,
    plugin_copy_to_host,
    plugin_copy_within,
    plugin_copy_peer,
    plugin_fill,
    plugin_synchronize,
    plugin_kv_append,
    plugin_attention_workspace_bytes,
    plugin_attention,
    plugin_attention_merge,
    plugin_page_select_workspace_bytes,
    plugin_page_select,
    plugin_model_step_workspace_bytes,
    plugin_model_step,
};

}  // namespace

}  // namespace inf::cuda

extern "C" __attribute__((visibility("default"))) const inf_plugin_api* inf_cuda_plugin_get(std::uint32_t abi_version) {
    return abi_version == INF_PLUGIN_ABI_VERSION ? &inf::cuda::kApi : nullptr;
}
