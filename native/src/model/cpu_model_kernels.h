// Elementwise CPU kernels of the model layers (the GEMMs go to BLAS, attention to the attention kernels).
// Plain loops the compiler vectorizes; rows are spread over the thread pool once there are enough of them
// (these kernels are a small part of a step: a pool wake-up would cost more than a decode row's work).
#pragma once

#include <cstdint>

namespace inf::cpu {

// out[r] = x[r] * w / sqrt(mean(x[r]^2) + eps) for rows of width dim (out may be x).
void rms_norm(const float* x, const float* w, float eps, std::int64_t rows, std::int64_t dim, float* out);

// gate[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + e^-g).
void silu_mul(float* gate, const float* up, std::int64_t count);

// dst[i] += src[i].
void add_into(float* dst, const float* src, std::int64_t count);

}  // namespace inf::cpu
