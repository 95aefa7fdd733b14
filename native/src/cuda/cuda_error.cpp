#include "cuda/cuda_error.h"

#include <cstdarg>
#include <cstdio>

namespace inf::cuda {

inf_status status_of(cudaError_t error) noexcept {
    switch (error) {
        case cudaSuccess: return INF_STATUS_OK;
        case cudaErrorMemoryAllocation: return INF_STATUS_OUT_OF_MEMORY;
        // The runtime cannot work on this machine: no driver, an old driver, no GPU.
        case cudaErrorInsufficientDriver:
        case cudaErrorNoDevice:
        case cudaErrorInitializationError:
        case cudaErrorSystemDriverMismatch:
        case cudaErrorStubLibrary: return INF_STATUS_BACKEND_UNAVAILABLE;
        case cudaErrorInvalidDevice: return INF_STATUS_OUT_OF_RANGE;
        // The plug-in holds no code for this GPU's architecture (see INFINITE_CUDA_ARCHS).
        case cudaErrorNoKernelImageForDevice: return INF_STATUS_UNSUPPORTED;
        default: return INF_STATUS_DEVICE_ERROR;
    }
}

namespace {

// Writes the formatted prefix; returns how many bytes of the sink it used.
std::size_t write_prefix(ErrorSink sink, const char* format, va_list args) noexcept {
    if (sink.text == nullptr || sink.capacity == 0) {
        return 0;
    }
    const int written = std::vsnprintf(sink.text, sink.capacity, format, args);
    if (written < 0) {
        sink.text[0] = '\0';
        return 0;
    }
    const auto used = static_cast<std::size_t>(written);
    return used < sink.capacity ? used : sink.capacity - 1;
}

}  // namespace

inf_status report(ErrorSink sink, cudaError_t error, const char* format, ...) noexcept {
    va_list args;
    va_start(args, format);
    const std::size_t used = write_prefix(sink, format, args);
    va_end(args);
    if (sink.text != nullptr && used + 1 < sink.capacity) {
        std::snprintf(sink.text + used, sink.capacity - used, ": %s: %s", cudaGetErrorName(error),
                      cudaGetErrorString(error));
    }
    return status_of(error);
}

inf_status report_status(ErrorSink sink, inf_status status, const char* format, ...) noexcept {
    va_list args;
    va_start(args, format);
    write_prefix(sink, format, args);
    va_end(args);
    return status;
}

}  // namespace inf::cuda
