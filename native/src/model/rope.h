// Rotary position embedding (RoPE) of Llama-family models: frequencies (with NONE / LINEAR / LLAMA3
// scaling) and the rotation of q and k rows in place.
#pragma once

#include <cstdint>
#include <vector>

#include "infinite/infinite.h"

namespace inf {

// inv_freq[i] for the head_dim / 2 pairs: theta^(-2i / head_dim), then the config's scaling. LINEAR
// (positions / factor) is folded in as inv_freq / factor. Computed in float64.
std::vector<double> rope_inv_freq(const inf_model_config& config);

// cos / sin tables [tokens][head_dim / 2] for the tokens' positions.
void rope_tables(const std::vector<double>& inv_freq, const std::int32_t* positions, std::int32_t tokens, float* cos_out,
                 float* sin_out);

// Rotates rows [tokens][heads][head_dim] in place; row stride = heads * head_dim.
void rope_apply(float* x, std::int32_t tokens, std::int32_t heads, std::int32_t head_dim, inf_rope_style style,
                const float* cos_table, const float* sin_table);

}  // namespace inf
