// CUDA errors -> inf_status + message, in the form the core passes on to inf_last_error():
// "cudaMalloc(1024 bytes) on cuda:0: cudaErrorMemoryAllocation: out of memory".
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>

#include "infinite/infinite.h"

namespace inf::cuda {

// Where a plug-in call writes its message.
struct ErrorSink {
    char* text;
    std::size_t capacity;
};

// The status a runtime error maps to (OUT_OF_MEMORY, BACKEND_UNAVAILABLE, ...).
inf_status status_of(cudaError_t error) noexcept;

// Formats "<what printf-style>: <error name>: <error text>" into sink and returns status_of(error).
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
inf_status report(ErrorSink sink, cudaError_t error, const char* format, ...) noexcept;

// Formats a message that is not a runtime error, returns status.
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
inf_status report_status(ErrorSink sink, inf_status status, const char* format, ...) noexcept;

}  // namespace inf::cuda
