// inf_buffer_fill: every pattern size checked element by element, and its error paths.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "device_checks.h"
#include "test_util.h"

using inf_test::Buffer;
using inf_test::Device;
using inf_test::make_buffer;
using inf_test::make_device;
using inf_test::random_bytes;
using inf_test::read_all;

TEST(BufferFill, EveryPatternSizeAtEveryAlignment) {
    Device device = make_device();
    inf_test::check_fill_patterns(device.get());
}

TEST(BufferFill, NaNPoisonAsFloats) {
    // The use the header names: poison a float output with a NaN bit pattern.
    Device device = make_device();
    constexpr uint64_t kCount = 1000;
    Buffer buffer = make_buffer(device.get(), kCount * sizeof(float));
    const float nan = std::numeric_limits<float>::quiet_NaN();
    ASSERT_OK(inf_buffer_fill(buffer.get(), 0, &nan, sizeof nan, kCount));
    std::vector<float> values(kCount, 0.0F);
    ASSERT_OK(inf_buffer_read(buffer.get(), 0, values.data(), kCount * sizeof(float)));
    for (const float value : values) {
        ASSERT_TRUE(std::isnan(value));
    }
}

TEST(BufferFill, LargeFillsAtOddOffsets) {
    // Large enough for the CPU backend's streaming-store path, with heads and tails of every length.
    Device device = make_device();
    constexpr uint64_t kBytes = (uint64_t{8} << 20) + 64;
    Buffer buffer = make_buffer(device.get(), kBytes);
    const unsigned char pattern[8] = {0x10, 0x32, 0x54, 0x76, 0x98, 0xBA, 0xDC, 0xFE};
    const std::pair<uint32_t, uint64_t> cases[] = {{8, 0}, {4, 3}, {2, 13}, {8, 9}};
    for (const auto& [width, offset] : cases) {
        const auto before = random_bytes(kBytes, offset);
        ASSERT_OK(inf_buffer_write(buffer.get(), 0, before.data(), kBytes));
        const uint64_t count = (kBytes - offset - 7) / width;
        ASSERT_OK(inf_buffer_fill(buffer.get(), offset, pattern, width, count));
        const auto after = read_all(buffer.get());
        for (uint64_t i = 0; i < kBytes; ++i) {
            const bool inside = i >= offset && i < offset + count * width;
            ASSERT_EQ(after[i], inside ? pattern[(i - offset) % width] : before[i])
                << "byte " << i << ", width " << width << ", offset " << offset;
        }
    }
}

TEST(BufferFill, BadPatternSize) {
    Device device = make_device();
    Buffer buffer = make_buffer(device.get(), 64);
    const uint64_t pattern = 1;
    for (const uint32_t width : {0U, 3U, 5U, 6U, 7U, 16U, 0xFFFFFFFFU}) {
        EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT,
                     "inf_buffer_fill: pattern_bytes (" + std::to_string(width) + ") must be 1, 2, 4 or 8",
                     inf_buffer_fill(buffer.get(), 0, &pattern, width, 1));
    }
}

TEST(BufferFill, CountOverflowAndRange) {
    Device device = make_device();
    Buffer buffer = make_buffer(device.get(), 64);
    const uint64_t pattern = 1;
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE,
                 "inf_buffer_fill: count (2305843009213693952) * pattern_bytes (8) overflows 64 bits",
                 inf_buffer_fill(buffer.get(), 0, &pattern, 8, uint64_t{1} << 61));
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "count (18446744073709551615) * pattern_bytes (2) overflows",
                 inf_buffer_fill(buffer.get(), 0, &pattern, 2, UINT64_MAX));
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE,
                 "inf_buffer_fill: dst_offset (8) + count * pattern_bytes (64) exceeds buffer size (64)",
                 inf_buffer_fill(buffer.get(), 8, &pattern, 4, 16));
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "dst_offset (18446744073709551615) + count * pattern_bytes (1) overflows",
                 inf_buffer_fill(buffer.get(), UINT64_MAX, &pattern, 1, 1));
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "dst_offset (0) + count * pattern_bytes (72) exceeds buffer size (64)",
                 inf_buffer_fill(buffer.get(), 0, &pattern, 8, 9));
    EXPECT_OK(inf_buffer_fill(buffer.get(), 0, &pattern, 8, 8));  // exactly the whole buffer
}

TEST(BufferFill, NullPattern) {
    Device device = make_device();
    Buffer buffer = make_buffer(device.get(), 64);
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_buffer_fill: pattern is null", inf_buffer_fill(buffer.get(), 0, nullptr, 4, 1));
    EXPECT_OK(inf_buffer_fill(buffer.get(), 0, nullptr, 4, 0));   // nothing to write
    EXPECT_OK(inf_buffer_fill(buffer.get(), 64, nullptr, 8, 0));  // at the end, nothing to write
}

TEST(BufferFill, FailedFillChangesNothing) {
    Device device = make_device();
    Buffer buffer = make_buffer(device.get(), 64);
    const auto data = random_bytes(64, 9);
    ASSERT_OK(inf_buffer_write(buffer.get(), 0, data.data(), 64));
    const uint32_t pattern = 0xFFFFFFFFU;
    EXPECT_STATUS(INF_STATUS_OUT_OF_RANGE, inf_buffer_fill(buffer.get(), 4, &pattern, 4, 16));
    EXPECT_STATUS(INF_STATUS_INVALID_ARGUMENT, inf_buffer_fill(buffer.get(), 0, &pattern, 3, 4));
    EXPECT_EQ(read_all(buffer.get()), data);
}
