#include "model/blas.h"

#include <cblas.h>
#include <dlfcn.h>

#include <cstdlib>
#include <mutex>
#include <string>

#include "core/cpu_backend.h"
#include "core/log.h"
#include "core/status.h"
#include "core/thread_pool.h"

namespace inf::blas {

namespace {

struct Library {
    decltype(&cblas_sgemm) sgemm = nullptr;
    decltype(&cblas_sgemv) sgemv = nullptr;
    char* (*corename)() = nullptr;
    std::string error;  // why loading failed; empty when loaded
};

template <class Function>
Function symbol(void* handle, const char* name, std::string& error) {
    void* address = dlsym(handle, name);
    if (address == nullptr && error.empty()) {
        error = std::string("OpenBLAS has no symbol ") + name;
    }
    return reinterpret_cast<Function>(address);
}

Library load() {
    Library library;
    // Kernels for the CPU the core detected, unless the user chose (OpenBLAS reads this when it loads).
    const std::uint32_t features = cpu_features();
    if ((features & INF_CPU_FEATURE_AVX512F) != 0) {
        setenv("OPENBLAS_CORETYPE", "SkylakeX", 0);
    } else if ((features & INF_CPU_FEATURE_AVX2) != 0 && (features & INF_CPU_FEATURE_FMA) != 0) {
        setenv("OPENBLAS_CORETYPE", "Haswell", 0);
    }
    const char* candidates[] = {"libopenblas.so.0", "libopenblas.so", INFINITE_OPENBLAS_LIBRARY};
    void* handle = nullptr;
    std::string reasons;
    for (const char* name : candidates) {
        handle = dlopen(name, RTLD_NOW | RTLD_LOCAL);
        if (handle != nullptr) {
            break;
        }
        const char* reason = dlerror();
        reasons += std::string(reasons.empty() ? "" : "; ") + name + ": " + (reason != nullptr ? reason : "not found");
    }
    if (handle == nullptr) {
        library.error = "cannot load OpenBLAS, which the CPU model layers need (install libopenblas0, e.g. "
                        "./build.sh deps): " + reasons;
        return library;
    }
    library.sgemm = symbol<decltype(&cblas_sgemm)>(handle, "cblas_sgemm", library.error);
    library.sgemv = symbol<decltype(&cblas_sgemv)>(handle, "cblas_sgemv", library.error);
    auto set_threads = symbol<void (*)(int)>(handle, "openblas_set_num_threads", library.error);
    library.corename = symbol<char* (*)()>(handle, "openblas_get_corename", library.error);
    if (!library.error.empty()) {
        return library;
    }
    // One BLAS thread per pool thread: the pool's kernels and BLAS run one after the other, never nested.
    set_threads(ThreadPool::instance().threads());
    log(INF_LOG_LEVEL_INFO, "OpenBLAS loaded: ", library.corename(), " kernels, ", ThreadPool::instance().threads(),
        " threads");
    return library;
}

const Library& library() {
    static const Library loaded = load();
    return loaded;
}

}  // namespace

void require() {
    const Library& l = library();
    if (!l.error.empty()) {
        fail(INF_STATUS_BACKEND_UNAVAILABLE, l.error);
    }
}

const char* core_name() noexcept {
    const Library& l = library();
    return l.corename != nullptr ? l.corename() : "unavailable";
}

void linear(const float* x, std::int64_t rows, std::int64_t in, const float* w, std::int64_t out, float* y, float beta) {
    const Library& l = library();
    // Few rows (decode) go through GEMV: GEMM would pack the whole weight matrix for one row.
    constexpr std::int64_t kGemvRows = 2;
    if (rows <= kGemvRows) {
        for (std::int64_t r = 0; r < rows; ++r) {
            l.sgemv(CblasRowMajor, CblasNoTrans, static_cast<blasint>(out), static_cast<blasint>(in), 1.0F, w,
                    static_cast<blasint>(in), x + r * in, 1, beta, y + r * out, 1);
        }
        return;
    }
    l.sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(rows), static_cast<blasint>(out),
            static_cast<blasint>(in), 1.0F, x, static_cast<blasint>(in), w, static_cast<blasint>(in), beta, y,
            static_cast<blasint>(out));
}

}  // namespace inf::blas
