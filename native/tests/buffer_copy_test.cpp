// inf_buffer_copy: between buffers, within one buffer (overlapping both ways), and its error paths.
#include <cstdint>
#include <vector>

#include "device_checks.h"
#include "test_util.h"

using inf_test::Buffer;
using inf_test::Device;
using inf_test::make_buffer;
using inf_test::make_device;
using inf_test::random_bytes;
using inf_test::read_all;

TEST(BufferCopy, BetweenBuffers) {
    Device device = make_device();
    inf_test::check_copy_between(device.get(), device.get());
}

TEST(BufferCopy, BetweenBuffersOfTwoDeviceHandles) {
    Device first = make_device();
    Device second = make_device();
    inf_test::check_copy_between(first.get(), second.get());
}

TEST(BufferCopy, OverlappingRangesOfOneBuffer) {
    Device device = make_device();
    inf_test::check_overlapping_copy(device.get(), 4096 + 7);
}

TEST(BufferCopy, ZeroBytesAnywhereInRange) {
    Device device = make_device();
    Buffer a = make_buffer(device.get(), 64);
    Buffer b = make_buffer(device.get(), 32);
    const auto data = random_bytes(64);
    ASSERT_OK(inf_buffer_write(a.get(), 0, data.data(), 64));
    EXPECT_OK(inf_buffer_copy(a.get(), 64, b.get(), 32, 0));
    EXPECT_EQ(read_all(a.get()), data);
}

TEST(BufferCopy, RangeErrors) {
    Device device = make_device();
    Buffer big = make_buffer(device.get(), 256);
    Buffer small = make_buffer(device.get(), 64);
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "inf_buffer_copy: dst_offset (0) + bytes (100) exceeds buffer size (64)",
                 inf_buffer_copy(small.get(), 0, big.get(), 0, 100));
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "inf_buffer_copy: src_offset (10) + bytes (60) exceeds buffer size (64)",
                 inf_buffer_copy(big.get(), 0, small.get(), 10, 60));
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "dst_offset (18446744073709551615) + bytes (1) overflows 64 bits",
                 inf_buffer_copy(big.get(), UINT64_MAX, small.get(), 0, 1));
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "src_offset (18446744073709551614) + bytes (2) overflows 64 bits",
                 inf_buffer_copy(big.get(), 0, small.get(), UINT64_MAX - 1, 2));
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "src_offset (65) + bytes (0) exceeds buffer size (64)",
                 inf_buffer_copy(big.get(), 0, small.get(), 65, 0));
}

TEST(BufferCopy, NullHandles) {
    Device device = make_device();
    Buffer buffer = make_buffer(device.get(), 64);
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_buffer_copy: dst is null", inf_buffer_copy(nullptr, 0, buffer.get(), 0, 1));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_buffer_copy: src is null", inf_buffer_copy(buffer.get(), 0, nullptr, 0, 1));
}
