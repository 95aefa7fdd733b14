#include "model/step_profile.h"

#include <cstdlib>
#include <cstring>
#include <sstream>

#include "core/log.h"

namespace inf {

bool StepProfile::enabled() noexcept {
    static const bool on = [] {
        const char* value = std::getenv("INFINITE_MODEL_PROFILE");
        return value != nullptr && std::strcmp(value, "1") == 0;
    }();
    return on;
}

void StepProfile::report() const noexcept {
    const std::int64_t steps = steps_.load();
    if (!enabled() || steps == 0) {
        return;
    }
    static constexpr const char* kNames[] = {"embed", "norm", "qkv", "rope", "append", "select", "attention", "output", "mlp", "head",
                                               "exchange", "serve"};
    try {
        std::ostringstream text;
        text << "model step profile over " << steps << " steps (ms/step):";
        for (std::size_t i = 0; i < nanoseconds_.size(); ++i) {
            text << ' ' << kNames[i] << ' ' << static_cast<double>(nanoseconds_[i].load()) / 1e6 / static_cast<double>(steps);
        }
        const std::uint64_t sent = exchange_sent_.load();
        const std::uint64_t received = exchange_received_.load();
        if (sent + received > 0) {
            text << "; exchange bytes/step sent " << static_cast<double>(sent) / static_cast<double>(steps) << " received "
                 << static_cast<double>(received) / static_cast<double>(steps);
        }
        log(INF_LOG_LEVEL_INFO, text.str());
    } catch (...) {
        // A report that cannot be formatted is dropped; it is diagnostics only.
    }
}

}  // namespace inf
