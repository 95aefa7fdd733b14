// Checks of an inf_model_config (the shape and hyper-parameters of a Llama-family model).
#pragma once

#include <cstdint>

#include "infinite/infinite.h"

namespace inf {

// Throws INVALID_ARGUMENT naming the first bad field as "config-><field>".
void validate_model_config(const inf_model_config& config);

// Query / KV projection widths: q_heads * head_dim and kv_heads * head_dim.
inline std::int64_t q_width(const inf_model_config& c) noexcept { return std::int64_t{c.q_heads} * c.head_dim; }
inline std::int64_t kv_width(const inf_model_config& c) noexcept { return std::int64_t{c.kv_heads} * c.head_dim; }

}  // namespace inf
