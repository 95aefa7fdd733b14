#include "core/log.h"

#include <cstdio>
#include <mutex>

namespace inf {
namespace detail {

std::atomic<int> g_log_level{INF_LOG_LEVEL_WARNING};

namespace {

// The callback and its user_data change together, so they are read and written under one mutex.
// The callback itself runs outside the lock: it may log or replace the callback without deadlocking.
struct Sink {
    std::mutex mutex;
    inf_log_callback callback = nullptr;
    void* user_data = nullptr;
};

// Never destroyed: threads may still log while static destructors run at exit.
Sink& sink() {
    static Sink* instance = new Sink();
    return *instance;
}

}  // namespace

void log_deliver(inf_log_level level, const std::string& message) noexcept {
    inf_log_callback callback;
    void* user_data;
    {
        Sink& s = sink();
        std::lock_guard lock(s.mutex);
        callback = s.callback;
        user_data = s.user_data;
    }
    if (callback != nullptr) {
        callback(user_data, level, message.c_str());
        return;
    }
    // One fprintf per line: stdio locks the stream, so concurrent lines do not interleave.
    std::fprintf(stderr, "[infinite] %s: %s\n", log_level_name(level), message.c_str());
}

}  // namespace detail

void set_log_callback(inf_log_callback callback, void* user_data) noexcept {
    auto& s = detail::sink();
    std::lock_guard lock(s.mutex);
    s.callback = callback;
    s.user_data = user_data;
}

void set_log_level(inf_log_level level) noexcept {
    detail::g_log_level.store(static_cast<int>(level), std::memory_order_relaxed);
}

const char* log_level_name(inf_log_level level) noexcept {
    switch (level) {
        case INF_LOG_LEVEL_TRACE: return "TRACE";
        case INF_LOG_LEVEL_DEBUG: return "DEBUG";
        case INF_LOG_LEVEL_INFO: return "INFO";
        case INF_LOG_LEVEL_WARNING: return "WARNING";
        case INF_LOG_LEVEL_ERROR: return "ERROR";
        case INF_LOG_LEVEL_NONE: return "NONE";
    }
    return "UNKNOWN";
}

}  // namespace inf
