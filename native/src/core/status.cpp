#include "core/status.h"

#include <ios>
#include <string>

namespace inf {

std::ostream& operator<<(std::ostream& stream, Hex hex) {
    const auto flags = stream.flags();
    stream << "0x" << std::hex << hex.value;
    stream.flags(flags);
    return stream;
}

const char* status_name(std::int32_t status) noexcept {
    switch (status) {
        case INF_STATUS_OK: return "INF_STATUS_OK";
        case INF_STATUS_INVALID_ARGUMENT: return "INF_STATUS_INVALID_ARGUMENT";
        case INF_STATUS_NULL_POINTER: return "INF_STATUS_NULL_POINTER";
        case INF_STATUS_INVALID_HANDLE: return "INF_STATUS_INVALID_HANDLE";
        case INF_STATUS_OUT_OF_RANGE: return "INF_STATUS_OUT_OF_RANGE";
        case INF_STATUS_OUT_OF_MEMORY: return "INF_STATUS_OUT_OF_MEMORY";
        case INF_STATUS_DEVICE_MISMATCH: return "INF_STATUS_DEVICE_MISMATCH";
        case INF_STATUS_BACKEND_UNAVAILABLE: return "INF_STATUS_BACKEND_UNAVAILABLE";
        case INF_STATUS_DEVICE_ERROR: return "INF_STATUS_DEVICE_ERROR";
        case INF_STATUS_UNSUPPORTED: return "INF_STATUS_UNSUPPORTED";
        case INF_STATUS_INTERNAL: return "INF_STATUS_INTERNAL";
        case INF_STATUS_TIMEOUT: return "INF_STATUS_TIMEOUT";
        case INF_STATUS_PEER_FAILED: return "INF_STATUS_PEER_FAILED";
    }
    return "INF_STATUS_UNKNOWN";
}

namespace {

// The string keeps its capacity across failures, so steady-state error paths do not allocate.
// When storing fails (out of memory), `fallback` points at a static text instead.
struct LastError {
    std::string text;
    const char* fallback = nullptr;
};

thread_local LastError t_last_error;

}  // namespace

void set_last_error(const char* function, const char* message, const char* detail) noexcept {
    LastError& last = t_last_error;
    try {
        last.text.clear();
        last.text.append(function).append(": ").append(message);
        if (detail != nullptr) {
            last.text.append(detail);
        }
        last.fallback = nullptr;
    } catch (...) {
        last.fallback = "out of host memory while recording an error message";
    }
}

const char* last_error() noexcept {
    const LastError& last = t_last_error;
    return last.fallback != nullptr ? last.fallback : last.text.c_str();
}

}  // namespace inf
