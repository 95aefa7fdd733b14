// Element types of KV storage (inf_dtype): sizes and float32 <-> float16 / bfloat16 conversions.
//
// Header-only and dependency-free so that the core (page pools), the CPU kernels and the tests share
// one definition. Narrowing conversions round to nearest, ties to even; NaN stays NaN (quiet), and
// values beyond the range of the narrow type become infinities, as IEEE 754 conversion does.
#pragma once

#include <cstdint>
#include <cstring>

#include "infinite/infinite.h"

namespace inf {

// Bytes of one element of dtype; 0 for a value that is not an inf_dtype.
inline constexpr std::uint32_t element_size(inf_dtype dtype) noexcept {
    switch (dtype) {
        case INF_DTYPE_F32: return 4;
        case INF_DTYPE_F16: return 2;
        case INF_DTYPE_BF16: return 2;
        case INF_DTYPE_I8: return 1;  // the code; the per-row float scale is stored apart (inf_kv_layer.k_scale)
    }
    return 0;
}

// "f32", "f16", "bf16", "i8" (for messages).
inline constexpr const char* dtype_name(inf_dtype dtype) noexcept {
    switch (dtype) {
        case INF_DTYPE_F32: return "f32";
        case INF_DTYPE_F16: return "f16";
        case INF_DTYPE_BF16: return "bf16";
        case INF_DTYPE_I8: return "i8";
    }
    return "unknown";
}

inline std::uint32_t float_bits(float value) noexcept {
    std::uint32_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    return bits;
}

inline float bits_float(std::uint32_t bits) noexcept {
    float value;
    std::memcpy(&value, &bits, sizeof value);
    return value;
}

// bfloat16 is the upper half of a float32.
inline float bf16_to_f32(std::uint16_t value) noexcept {
    return bits_float(static_cast<std::uint32_t>(value) << 16);
}

inline std::uint16_t f32_to_bf16(float value) noexcept {
    const std::uint32_t bits = float_bits(value);
    if ((bits & 0x7FFFFFFFU) > 0x7F800000U) {
        return static_cast<std::uint16_t>((bits >> 16) | 0x0040U);  // NaN: keep sign, force quiet
    }
    // Round to nearest even: add 0x7FFF plus the lowest kept bit; a carry into the exponent is the
    // correct rounding up (to the next binade, or to infinity).
    const std::uint32_t rounding = 0x7FFFU + ((bits >> 16) & 1U);
    return static_cast<std::uint16_t>((bits + rounding) >> 16);
}

inline float f16_to_f32(std::uint16_t value) noexcept {
    const std::uint32_t sign = static_cast<std::uint32_t>(value & 0x8000U) << 16;
    const std::uint32_t exponent = (value >> 10) & 0x1FU;
    std::uint32_t mantissa = value & 0x3FFU;
    if (exponent == 0x1FU) {  // infinity or NaN
        return bits_float(sign | 0x7F800000U | (mantissa << 13));
    }
    if (exponent != 0) {  // normal
        return bits_float(sign | ((exponent + 112U) << 23) | (mantissa << 13));
    }
    if (mantissa == 0) {
        return bits_float(sign);  // signed zero
    }
    // Subnormal: mantissa * 2^-24, exact in float32.
    return bits_float(sign | float_bits(static_cast<float>(mantissa) * 0x1p-24F));
}

inline std::uint16_t f32_to_f16(float value) noexcept {
    const std::uint32_t bits = float_bits(value);
    const std::uint16_t sign = static_cast<std::uint16_t>((bits >> 16) & 0x8000U);
    const std::uint32_t magnitude = bits & 0x7FFFFFFFU;
    if (magnitude > 0x7F800000U) {
        return static_cast<std::uint16_t>(sign | 0x7E00U | ((magnitude >> 13) & 0x3FFU));  // quiet NaN
    }
    if (magnitude >= 0x477FF000U) {
        // >= 65520 (the midpoint between the largest half, 65504, and 2^16) rounds to infinity.
        return static_cast<std::uint16_t>(sign | 0x7C00U);
    }
    if (magnitude >= 0x38800000U) {  // >= 2^-14: a normal half
        // Rebias the exponent (127 -> 15) and round the 23-bit mantissa to 10 bits, ties to even; a
        // carry out of the mantissa correctly bumps the exponent.
        const std::uint32_t rebased = magnitude - (112U << 23);
        const std::uint32_t rounded = rebased + 0xFFFU + ((rebased >> 13) & 1U);
        return static_cast<std::uint16_t>(sign | (rounded >> 13));
    }
    // Subnormal half (or zero): value / 2^-24 rounded to an integer, ties to even. Adding 0.5f (2^-1)
    // in float32 arithmetic does that rounding for magnitudes below 2^-14 exactly.
    const float scaled = bits_float(magnitude) * 0x1p24F;  // exact: a power-of-two scale
    const float shifted = scaled + 0x1p23F;                // rounds to an integer in the low mantissa bits
    return static_cast<std::uint16_t>(sign | (float_bits(shifted) - float_bits(0x1p23F)));
}

// One INF_DTYPE_I8 row: count values x as codes (round to nearest even, within -127..127) and the
// returned scale, max|x| / 127, so that x ~ code * scale with error <= scale / 2. An all-zero row gets
// scale 0 (codes 0). A row holding a NaN or an infinity gets a NaN scale (codes 0): it reads back as NaN,
// as such a key would poison f32 attention too, rather than as plausible numbers.
inline float quantize_i8_row(const float* x, int count, std::int8_t* codes) noexcept {
    float m = 0.0f;
    for (int i = 0; i < count; ++i) {
        const float a = x[i] < 0.0f ? -x[i] : x[i];
        m = a > m || a != a ? a : m;  // a NaN sticks
    }
    if (!(m <= 3.4028234663852886e38f) || m == 0.0f) {  // NaN or infinity, or all zero
        for (int i = 0; i < count; ++i) {
            codes[i] = 0;
        }
        return m == 0.0f ? 0.0f : bits_float(0x7FC00000U);
    }
    const float scale = m / 127.0f;
    const float inverse = 127.0f / m;
    for (int i = 0; i < count; ++i) {
        // x * inverse lies within [-127, 127] up to one rounding; the clamp keeps the code in range.
        float c = __builtin_nearbyintf(x[i] * inverse);
        c = c > 127.0f ? 127.0f : (c < -127.0f ? -127.0f : c);
        codes[i] = static_cast<std::int8_t>(c);
    }
    return scale;
}

// count elements of dtype at src converted to float32 at dst. For INF_DTYPE_I8 these are the codes
// themselves (the caller multiplies by the row's scale); from_f32 likewise rounds to codes.
void to_f32(inf_dtype dtype, const void* src, float* dst, std::uint64_t count) noexcept;
// count float32 values at src converted (rounded) to dtype at dst.
void from_f32(inf_dtype dtype, const float* src, void* dst, std::uint64_t count) noexcept;

}  // namespace inf
