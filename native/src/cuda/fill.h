// The fill kernels (fill.cu), callable from host code compiled by the C++ compiler.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace inf::cuda {

// Queues count copies of the first pattern_bytes (1, 2, 4 or 8) bytes of pattern's representation at
// dst (any alignment) on the current device's default stream. Returns the launch error, if any.
cudaError_t launch_fill(void* dst, std::uint64_t pattern, std::uint32_t pattern_bytes, std::uint64_t count) noexcept;

}  // namespace inf::cuda
