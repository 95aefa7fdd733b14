// Weight storage types (inf_tensor_type) to float32: byte sizes and conversions.
// Q8_0 is GGUF's layout: blocks of 32 values along the innermost dimension, each block a float16 scale
// followed by 32 int8 (34 bytes); value = scale * q.
#pragma once

#include <cstdint>

#include "infinite/infinite.h"

namespace inf {

inline constexpr std::int64_t kQ8Block = 32;
inline constexpr std::int64_t kQ8BlockBytes = 34;

// "F32", "F16", "BF16", "Q8_0"; "unknown" for other values.
const char* tensor_type_name(std::int32_t type) noexcept;

// Bytes of elements values of type (elements a multiple of 32 for Q8_0).
std::uint64_t tensor_type_bytes(inf_tensor_type type, std::uint64_t elements) noexcept;

// Converts elements values (for Q8_0 a multiple of 32, starting at a block boundary) to float32.
void tensor_to_f32(inf_tensor_type type, const void* src, float* dst, std::uint64_t elements) noexcept;

}  // namespace inf
