// Native log lines, delivered to the callback set with inf_set_log_callback (stderr by default).
//
// The level check is one relaxed atomic load, and a filtered line is never formatted, so logging on
// paths such as buffer creation costs nothing measurable at the default level (WARNING).
#pragma once

#include <atomic>
#include <string>

#include "core/status.h"
#include "infinite/infinite.h"

namespace inf {

namespace detail {
extern std::atomic<int> g_log_level;
void log_deliver(inf_log_level level, const std::string& message) noexcept;
}  // namespace detail

inline bool log_enabled(inf_log_level level) noexcept {
    return static_cast<int>(level) >= detail::g_log_level.load(std::memory_order_relaxed);
}

// Formats the arguments (only when level passes the filter) and delivers one line. Never throws.
template <class... Args>
void log(inf_log_level level, const Args&... args) noexcept {
    if (!log_enabled(level)) {
        return;
    }
    try {
        detail::log_deliver(level, cat(args...));
    } catch (...) {
        // Out of memory while formatting a log line: the line is dropped, the caller carries on.
    }
}

void set_log_callback(inf_log_callback callback, void* user_data) noexcept;
void set_log_level(inf_log_level level) noexcept;
const char* log_level_name(inf_log_level level) noexcept;

}  // namespace inf
