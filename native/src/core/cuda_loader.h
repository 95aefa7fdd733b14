// Loads the CUDA plug-in (libinfinite_cuda.so) at run time, once per process.
//
// The core never links CUDA: the plug-in is dlopen'ed from the directory of libinfinite.so itself (or
// from $INFINITE_CUDA_PLUGIN, a full path), so libinfinite.so loads on any machine and a missing
// plug-in, runtime, driver or GPU becomes a clear message instead of a failed load of the core.
#pragma once

#include <string>

#include "core/backend.h"

namespace inf {

struct CudaLoadResult {
    // Null when the backend is unavailable; error then says why (naming the library and the reason).
    Backend* backend = nullptr;
    std::string error;
};

// The first call loads (and logs the outcome); later calls return the same result.
const CudaLoadResult& load_cuda_backend() noexcept;

// The directory holding the shared object this code was linked into (libinfinite.so), "" if unknown.
std::string library_directory();

}  // namespace inf
