#include "core/cuda_loader.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "build_config.h"
#include "core/cuda_backend.h"
#include "core/log.h"
#include "core/plugin_abi.h"
#include "core/plugin_library.h"
#include "core/status.h"

namespace inf {

namespace {

constexpr const char* kPluginFile = "libinfinite_cuda.so";
constexpr const char* kPluginEnv = "INFINITE_CUDA_PLUGIN";

// An address inside this shared object, for dladdr.
const char g_anchor = 0;

// Either fills result.backend or returns the reason it cannot.
std::string try_load(CudaLoadResult& result) {
    // RTLD_LOCAL: the plug-in's statically linked CUDA runtime stays out of the global namespace.
    // The handle is never closed: buffers may hold device memory until the process exits.
    const PluginLibrary library = open_plugin("CUDA backend", "CUDA", kPluginFile, kPluginEnv,
                                              "it is built and shipped next to libinfinite.so", INF_PLUGIN_ENTRY_NAME,
                                              RTLD_NOW | RTLD_LOCAL);
    if (library.missing && INFINITE_CUDA_BUILT == 0) {
        return "CUDA backend not built (INFINITE_CUDA=OFF or no CUDA compiler at build time)";
    }
    if (library.entry == nullptr) {
        return library.error;
    }
    const std::string& path = library.path;
    void* entry = library.entry;
    inf_plugin_get_fn get = nullptr;
    static_assert(sizeof get == sizeof entry);
    std::memcpy(&get, &entry, sizeof get);  // object pointer to function pointer, as POSIX allows
    const inf_plugin_api* api = get(INF_PLUGIN_ABI_VERSION);
    if (api == nullptr || api->abi_version != INF_PLUGIN_ABI_VERSION || api->size < INF_PLUGIN_API_MIN_SIZE) {
        return cat("CUDA backend unavailable: ", path, " does not implement plug-in ABI version ",
                   INF_PLUGIN_ABI_VERSION, " (it comes from another build of Infinite than libinfinite.so)");
    }

    char error[INF_PLUGIN_ERROR_CAPACITY] = {};
    std::int32_t count = 0;
    const std::int32_t status = api->init(&count, error, sizeof error);
    if (status != INF_STATUS_OK) {
        error[sizeof error - 1] = '\0';
        return cat("CUDA backend unavailable: ", path, ": ", error[0] != '\0' ? error : status_name(status));
    }
    if (count <= 0) {
        return cat("CUDA backend unavailable: ", path, ": no CUDA device found");
    }
    result.backend = make_plugin_backend(api, count).release();
    log(INF_LOG_LEVEL_INFO, "loaded CUDA plug-in ", path, " (", api->description != nullptr ? api->description : "",
        "): ", count, count == 1 ? " device" : " devices");
    return {};
}

}  // namespace

std::string library_directory() {
    Dl_info info{};
    if (dladdr(&g_anchor, &info) == 0 || info.dli_fname == nullptr) {
        return {};
    }
    std::string file = info.dli_fname;
    const auto slash = file.rfind('/');
    if (slash == std::string::npos) {
        return ".";
    }
    return slash == 0 ? "/" : file.substr(0, slash);
}

const CudaLoadResult& load_cuda_backend() noexcept {
    // A magic static runs the load once even when many threads ask at the same time, and keeps the
    // failure reason for every later call. Never destroyed (see the dlopen comment).
    static const CudaLoadResult* result = []() -> const CudaLoadResult* {
        static const CudaLoadResult out_of_memory{nullptr, "CUDA backend unavailable: out of host memory"};
        auto* loaded = new (std::nothrow) CudaLoadResult();
        if (loaded == nullptr) {
            return &out_of_memory;
        }
        try {
            loaded->error = try_load(*loaded);
        } catch (...) {
            // Only std::bad_alloc can get here: try_load reports every other failure as its result.
            delete loaded;
            return &out_of_memory;
        }
        if (loaded->backend == nullptr) {
            // "Not built" is how the library was configured, not a fault of this machine: INFO, not WARNING.
            const bool not_built = loaded->error.rfind("CUDA backend not built", 0) == 0;
            log(not_built ? INF_LOG_LEVEL_INFO : INF_LOG_LEVEL_WARNING, loaded->error);
        }
        return loaded;
    }();
    return *result;
}

}  // namespace inf
