// The CPU backend: host memory, always available, exactly one device (cpu:0).
#pragma once

#include <cstdint>

#include "core/backend.h"

namespace inf {

Backend& cpu_backend();

// The inf_cpu_feature bits of the CPU the process runs on.
std::uint32_t cpu_features() noexcept;

// count copies of a pattern_bytes-byte pattern (the first bytes of pattern's representation) at dst,
// which may have any alignment. Shared with tests as the reference behaviour of every backend's fill.
void cpu_fill(void* dst, std::uint64_t pattern, std::uint32_t pattern_bytes, std::uint64_t count) noexcept;

}  // namespace inf
