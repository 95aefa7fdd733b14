// kv/dtype.h: float32 <-> float16 / bfloat16 conversions against independent float64 references:
// every half and bfloat16 value round-trips; rounding is to nearest, ties to even, including
// subnormals, the overflow threshold and NaN.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kv/dtype.h"

namespace {

float from_bits(std::uint32_t bits) {
    float value;
    std::memcpy(&value, &bits, sizeof value);
    return value;
}

bool half_is_nan(std::uint16_t h) { return (h & 0x7C00U) == 0x7C00U && (h & 0x3FFU) != 0; }
bool bf16_is_nan(std::uint16_t b) { return (b & 0x7F80U) == 0x7F80U && (b & 0x7FU) != 0; }

// The nearest half to x by a search over every finite half (ties: the even encoding), as float64.
class HalfReference {
public:
    HalfReference() {
        for (std::uint32_t h = 0; h < 0x7C00U; ++h) {  // non-negative finite halves, ascending
            values_.push_back(ldexp_half(static_cast<std::uint16_t>(h)));
        }
    }
    std::uint16_t round(float x) const {
        if (std::isnan(x)) return 0x7E00U;
        const std::uint16_t sign = std::signbit(x) ? 0x8000U : 0U;
        const double a = std::fabs(static_cast<double>(x));
        if (a >= 65520.0) return static_cast<std::uint16_t>(sign | 0x7C00U);
        const auto it = std::lower_bound(values_.begin(), values_.end(), a);
        std::size_t hi = static_cast<std::size_t>(it - values_.begin());
        if (hi == values_.size()) hi = values_.size() - 1;
        std::size_t best = hi;
        if (hi > 0) {
            const double up = values_[hi] - a;
            const double down = a - values_[hi - 1];
            if (down < up || (down == up && (hi - 1) % 2 == 0)) best = hi - 1;
        }
        return static_cast<std::uint16_t>(sign | best);
    }

private:
    static double ldexp_half(std::uint16_t h) {
        const int exponent = (h >> 10) & 0x1F;
        const int mantissa = h & 0x3FF;
        return exponent == 0 ? std::ldexp(mantissa, -24) : std::ldexp(1024 + mantissa, exponent - 25);
    }
    std::vector<double> values_;
};

// The nearest bfloat16: the two bfloat16 neighbours of x by truncation, compared in float64.
std::uint16_t bf16_reference(float x) {
    if (std::isnan(x)) return 0x7FC0U;
    if (std::isinf(x)) return std::signbit(x) ? 0xFF80U : 0x7F80U;
    std::uint32_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    const std::uint32_t low = bits & 0xFFFF0000U;
    const std::uint32_t high = low + 0x10000U;  // next magnitude (may be infinity)
    const double a = std::fabs(static_cast<double>(x));
    const double down = a - std::fabs(static_cast<double>(from_bits(low)));
    const double up = (high & 0x7FFFFFFFU) >= 0x7F800000U
                          ? std::ldexp(1.0, 128) - a  // rounding past the largest finite value: infinity at 2^128
                          : std::fabs(static_cast<double>(from_bits(high))) - a;
    const bool take_low = down < up || (down == up && ((low >> 16) & 1U) == 0);
    return static_cast<std::uint16_t>((take_low ? low : high) >> 16);
}

std::vector<float> test_floats() {
    std::vector<float> values;
    std::mt19937 engine(12345);
    for (int i = 0; i < 1000000; ++i) {
        values.push_back(from_bits(static_cast<std::uint32_t>(engine())));  // any pattern
        // Near and inside the half range, including its subnormals.
        const std::uint32_t exponent = 95 + static_cast<std::uint32_t>(engine() % 50);
        values.push_back(from_bits((engine() & 0x807FFFFFU) | (exponent << 23)));
    }
    for (float x : {0.0F, -0.0F, 65504.0F, 65519.99F, 65520.0F, -65520.0F, 0x1p-24F, 0x1p-25F, 0x1.8p-25F, 0x1p-26F,
                    0x1p-14F, 0x1.ff8p-15F, 1.0F + 0x1p-11F, 1.0F + 0x1p-8F, 1.0F + 3 * 0x1p-8F,
                    std::numeric_limits<float>::max(), std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::denorm_min()}) {
        values.push_back(x);
    }
    return values;
}

}  // namespace

TEST(KvDtype, ElementSizes) {
    EXPECT_EQ(inf::element_size(INF_DTYPE_F32), 4U);
    EXPECT_EQ(inf::element_size(INF_DTYPE_F16), 2U);
    EXPECT_EQ(inf::element_size(INF_DTYPE_BF16), 2U);
    EXPECT_EQ(inf::element_size(INF_DTYPE_I8), 1U);  // the code; its row's float scale is stored apart
    EXPECT_STREQ(inf::dtype_name(INF_DTYPE_I8), "i8");
}

TEST(KvDtype, EveryHalfAndBfloat16RoundTrips) {
    for (std::uint32_t i = 0; i < 0x10000U; ++i) {
        const auto h = static_cast<std::uint16_t>(i);
        const float f = inf::f16_to_f32(h);
        const float b = inf::bf16_to_f32(h);
        if (half_is_nan(h)) {
            EXPECT_TRUE(std::isnan(f)) << std::hex << i;
            EXPECT_TRUE(half_is_nan(inf::f32_to_f16(f))) << std::hex << i;
        } else {
            ASSERT_EQ(inf::f32_to_f16(f), h) << std::hex << i;
        }
        if (bf16_is_nan(h)) {
            EXPECT_TRUE(std::isnan(b)) << std::hex << i;
            EXPECT_TRUE(bf16_is_nan(inf::f32_to_bf16(b))) << std::hex << i;
        } else {
            ASSERT_EQ(inf::f32_to_bf16(b), h) << std::hex << i;
        }
    }
}

TEST(KvDtype, RoundsToNearestEvenLikeTheFloat64References) {
    const HalfReference half;
    for (float x : test_floats()) {
        std::uint32_t bits;
        std::memcpy(&bits, &x, sizeof bits);
        const std::uint16_t h = inf::f32_to_f16(x);
        const std::uint16_t b = inf::f32_to_bf16(x);
        if (std::isnan(x)) {
            ASSERT_TRUE(half_is_nan(h)) << std::hex << bits;
            ASSERT_TRUE(bf16_is_nan(b)) << std::hex << bits;
            continue;
        }
        ASSERT_EQ(h, half.round(x)) << std::hex << "f16 of 0x" << bits;
        ASSERT_EQ(b, bf16_reference(x)) << std::hex << "bf16 of 0x" << bits;
    }
}

TEST(KvDtype, BulkConversions) {
    const std::vector<float> in = {1.5F, -2.25F, 3.0e-5F, 70000.0F, -0.0F, 0.333333F, 1024.5F, -7.0F};
    for (inf_dtype dtype : {INF_DTYPE_F32, INF_DTYPE_F16, INF_DTYPE_BF16}) {
        std::vector<unsigned char> stored(in.size() * inf::element_size(dtype));
        std::vector<float> out(in.size(), std::numeric_limits<float>::quiet_NaN());
        inf::from_f32(dtype, in.data(), stored.data(), in.size());
        inf::to_f32(dtype, stored.data(), out.data(), in.size());
        for (std::size_t i = 0; i < in.size(); ++i) {
            const float expected = dtype == INF_DTYPE_F32   ? in[i]
                                   : dtype == INF_DTYPE_F16 ? inf::f16_to_f32(inf::f32_to_f16(in[i]))
                                                            : inf::bf16_to_f32(inf::f32_to_bf16(in[i]));
            EXPECT_EQ(out[i], expected) << i;
        }
    }
}

// int8 rows: codes within +-127 at round-to-nearest of x / scale, scale = max|x| / 127; the bulk forms carry
// codes only (the caller scales). Zero rows get scale 0, a non-finite row a NaN scale (reads back as NaN).
TEST(KvDtype, Int8RowsAndCodes) {
    const float row[8] = {1.0F, -2.54F, 0.013F, 0.0F, -0.5F, 2.413F, 1.307F, -1.1F};  // 127 / 2.54 = 50: no ties
    std::int8_t codes[8] = {};
    const float scale = inf::quantize_i8_row(row, 8, codes);
    EXPECT_FLOAT_EQ(scale, 2.54F / 127.0F);
    for (int i = 0; i < 8; ++i) {
        EXPECT_EQ(codes[i], static_cast<std::int8_t>(std::nearbyint(static_cast<double>(row[i]) / (static_cast<double>(2.54F) / 127.0)))) << i;
        EXPECT_LE(std::fabs(codes[i] * scale - row[i]), scale / 2 * (1 + 1e-6F)) << i;
    }
    EXPECT_EQ(codes[1], -127);
    const float zeros[4] = {0.0F, -0.0F, 0.0F, 0.0F};
    EXPECT_EQ(inf::quantize_i8_row(zeros, 4, codes), 0.0F);
    EXPECT_EQ(codes[0], 0);
    const float bad[3] = {1.0F, std::numeric_limits<float>::infinity(), 2.0F};
    EXPECT_TRUE(std::isnan(inf::quantize_i8_row(bad, 3, codes)));
    const float nan_row[3] = {1.0F, std::numeric_limits<float>::quiet_NaN(), 2.0F};
    EXPECT_TRUE(std::isnan(inf::quantize_i8_row(nan_row, 3, codes)));

    const float in[6] = {1.4F, -1.6F, 300.0F, -300.0F, 2.5F, std::numeric_limits<float>::quiet_NaN()};
    std::int8_t stored[6] = {};
    float out[6] = {};
    inf::from_f32(INF_DTYPE_I8, in, stored, 6);
    inf::to_f32(INF_DTYPE_I8, stored, out, 6);
    const float expected[6] = {1.0F, -2.0F, 127.0F, -127.0F, 2.0F, -127.0F};  // clamped; ties to even; NaN to -127
    for (int i = 0; i < 6; ++i) {
        EXPECT_EQ(out[i], expected[i]) << i;
    }
}
