#include "cuda/cublas_loader.h"

#include <dlfcn.h>

#include <cstdio>
#include <cstring>
#include <mutex>

namespace inf::cuda {

namespace {

#define INF_STRINGIFY_(x) #x
#define INF_STRINGIFY(x) INF_STRINGIFY_(x)
// The soname of the toolkit the plug-in was built with first; the unversioned name (a development
// install) second. cublasGemmEx and the handle calls have kept their ABI across majors.
constexpr const char* kNames[] = {"libcublas.so." INF_STRINGIFY(CUBLAS_VER_MAJOR), "libcublas.so"};

CublasApi g_api;
bool g_loaded = false;
char g_error[512] = {};
std::once_flag g_once;

template <class Fn>
bool bind(void* library, const char* name, Fn& out) {
    void* symbol = dlsym(library, name);
    if (symbol == nullptr) {
        std::snprintf(g_error, sizeof g_error, "%s has no %s", kNames[0], name);
        return false;
    }
    std::memcpy(&out, &symbol, sizeof out);
    return true;
}

void load() {
    void* library = nullptr;
    for (const char* name : kNames) {
        library = dlopen(name, RTLD_NOW | RTLD_LOCAL);
        if (library != nullptr) {
            break;
        }
    }
    if (library == nullptr) {
        const char* reason = dlerror();
        std::snprintf(g_error, sizeof g_error, "cuBLAS could not be loaded (%s or %s): %s", kNames[0], kNames[1],
                      reason != nullptr ? reason : "not found");
        return;
    }
    // Kept loaded for the life of the process, like the plug-in itself.
    g_loaded = bind(library, "cublasCreate_v2", g_api.create) && bind(library, "cublasDestroy_v2", g_api.destroy) &&
               bind(library, "cublasSetStream_v2", g_api.set_stream) && bind(library, "cublasGemmEx", g_api.gemm_ex);
}

}  // namespace

const CublasApi* cublas_api(const char** why) noexcept {
    std::call_once(g_once, load);
    if (!g_loaded) {
        *why = g_error;
        return nullptr;
    }
    return &g_api;
}

const char* cublas_status_name(cublasStatus_t status) noexcept {
    switch (status) {
        case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
        case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
        case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
        case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
        case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
        case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
        case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
        case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
        case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
        case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    }
    return "CUBLAS_STATUS_(unknown)";
}

}  // namespace inf::cuda
