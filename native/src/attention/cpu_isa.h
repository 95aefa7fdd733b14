// Run-time selection of the CPU kernels' instruction set (internal; tests force each level).
#pragma once

namespace inf::cpu {

enum class Isa : int { scalar = 0, avx2 = 1, avx512 = 2 };

// The best level this CPU supports (AVX2 means AVX2+FMA+F16C; AVX-512 means F/BW/VL too).
Isa supported_isa() noexcept;

// The level the kernels use: supported_isa(), capped by env INFINITE_CPU_ISA=scalar|avx2|avx512 (read
// once) or by set_isa_override.
Isa active_isa() noexcept;

// Forces a level (capped at supported_isa()); pass nullptr to return to the default. Not thread-safe
// against running kernels: for tests and benchmarks.
void set_isa_override(const Isa* isa) noexcept;

const char* isa_name(Isa isa) noexcept;

// Tests: true makes decode-shaped tiles use the general (lanes-across-queries) kernel too.
void set_force_lane_kernel(bool force) noexcept;

}  // namespace inf::cpu
