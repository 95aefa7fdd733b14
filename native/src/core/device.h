// The object behind inf_device: one device of one backend. Immutable, so thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "core/backend.h"

namespace inf {

class Device {
public:
    Device(Backend& backend, std::int32_t ordinal);
    ~Device();
    Device(const Device&) = delete;
    Device& operator=(const Device&) = delete;

    Backend& backend() const noexcept { return backend_; }
    inf_device_kind kind() const noexcept { return backend_.kind(); }
    std::int32_t ordinal() const noexcept { return ordinal_; }
    const std::string& label() const noexcept { return label_; }

    // Fills everything but info.size; free memory as of now.
    void info(inf_device_info& info) const { backend_.device_info(ordinal_, info); }
    void synchronize() const { backend_.synchronize(ordinal_); }

    // True when both name the same physical device (two handles may open the same GPU).
    bool same_device(const Device& other) const noexcept {
        return &backend_ == &other.backend_ && ordinal_ == other.ordinal_;
    }

private:
    Backend& backend_;
    std::int32_t ordinal_;
    std::string label_;
};

}  // namespace inf
