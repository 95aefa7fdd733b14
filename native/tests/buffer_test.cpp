// Buffers: create, size, location, write and read, with every error path.
#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "device_checks.h"
#include "test_util.h"

using inf_test::Buffer;
using inf_test::Device;
using inf_test::make_buffer;
using inf_test::make_device;
using inf_test::random_bytes;
using inf_test::read_all;
using ::testing::HasSubstr;

class BufferTest : public ::testing::Test {
protected:
    Device device_ = make_device();
};

// ---- create ---------------------------------------------------------------------------------------

TEST_F(BufferTest, CreateReportsSizeAndLocation) {
    Buffer buffer = make_buffer(device_.get(), 1000);
    uint64_t bytes = 0;
    EXPECT_OK(inf_buffer_size(buffer.get(), &bytes));
    EXPECT_EQ(bytes, 1000U);
    inf_device_kind kind = INF_DEVICE_KIND_CUDA;
    int32_t ordinal = -1;
    EXPECT_OK(inf_buffer_location(buffer.get(), &kind, &ordinal));
    EXPECT_EQ(kind, INF_DEVICE_KIND_CPU);
    EXPECT_EQ(ordinal, 0);
}

TEST_F(BufferTest, CreateOneByteAndOddSizes) {
    for (const uint64_t size : {1ULL, 3ULL, 255ULL, 257ULL, 4097ULL}) {
        Buffer buffer = make_buffer(device_.get(), size);
        const auto data = random_bytes(size, size);
        ASSERT_OK(inf_buffer_write(buffer.get(), 0, data.data(), size));
        EXPECT_EQ(read_all(buffer.get()), data) << size;
    }
}

TEST_F(BufferTest, CreateErrors) {
    inf_buffer* buffer = reinterpret_cast<inf_buffer*>(0x1234);
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "inf_buffer_create: bytes is 0", inf_buffer_create(device_.get(), 0, &buffer));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_buffer_create: out_buffer is null",
                 inf_buffer_create(device_.get(), 64, nullptr));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_buffer_create: device is null", inf_buffer_create(nullptr, 64, &buffer));
    EXPECT_EQ(buffer, nullptr) << "out_buffer is cleared on failure";
}

TEST_F(BufferTest, CreateTooLargeIsOutOfMemory) {
    const inf_live_objects before = inf_test::live_objects();
    inf_buffer* buffer = nullptr;
    for (const uint64_t bytes : {uint64_t{1} << 50, UINT64_MAX / 2, UINT64_MAX - 100, UINT64_MAX}) {
        EXPECT_ERROR(INF_STATUS_OUT_OF_MEMORY,
                     "inf_buffer_create: cannot allocate " + std::to_string(bytes) + " bytes on cpu:0",
                     inf_buffer_create(device_.get(), bytes, &buffer));
        EXPECT_EQ(buffer, nullptr);
    }
    EXPECT_EQ(inf_test::live_objects().buffers, before.buffers);
    EXPECT_EQ(inf_test::live_objects().buffer_bytes, before.buffer_bytes);
}

TEST_F(BufferTest, DestroyNullIsANoOp) {
    EXPECT_OK(inf_buffer_destroy(nullptr));
}

TEST_F(BufferTest, DestroyTwiceIsAnInvalidHandle) {
    inf_buffer* buffer = nullptr;
    ASSERT_OK(inf_buffer_create(device_.get(), 64, &buffer));
    ASSERT_OK(inf_buffer_destroy(buffer));
    EXPECT_ERROR(INF_STATUS_INVALID_HANDLE, "inf_buffer_destroy: buffer (0x", inf_buffer_destroy(buffer));
}

TEST_F(BufferTest, SizeAndLocationNullOutputs) {
    Buffer buffer = make_buffer(device_.get(), 64);
    inf_device_kind kind = INF_DEVICE_KIND_CPU;
    int32_t ordinal = 0;
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_buffer_size: out_bytes is null", inf_buffer_size(buffer.get(), nullptr));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_buffer_location: out_kind is null",
                 inf_buffer_location(buffer.get(), nullptr, &ordinal));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_buffer_location: out_ordinal is null",
                 inf_buffer_location(buffer.get(), &kind, nullptr));
}

// ---- write / read -----------------------------------------------------------------------------------

TEST_F(BufferTest, RoundTrip) {
    inf_test::check_round_trip(device_.get());
}

TEST_F(BufferTest, WriteRangeErrors) {
    Buffer buffer = make_buffer(device_.get(), 256);
    const auto data = random_bytes(512);
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "inf_buffer_write: dst_offset (100) + bytes (200) exceeds buffer size (256)",
                 inf_buffer_write(buffer.get(), 100, data.data(), 200));
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "dst_offset (0) + bytes (257) exceeds buffer size (256)",
                 inf_buffer_write(buffer.get(), 0, data.data(), 257));
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "dst_offset (257) + bytes (0) exceeds buffer size (256)",
                 inf_buffer_write(buffer.get(), 257, nullptr, 0));
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE,
                 "inf_buffer_write: dst_offset (18446744073709551615) + bytes (2) overflows 64 bits",
                 inf_buffer_write(buffer.get(), UINT64_MAX, data.data(), 2));
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "overflows 64 bits", inf_buffer_write(buffer.get(), 16, data.data(), UINT64_MAX));
    EXPECT_OK(inf_buffer_write(buffer.get(), 56, data.data(), 200));  // exactly up to the end
}

TEST_F(BufferTest, WriteNullSource) {
    Buffer buffer = make_buffer(device_.get(), 256);
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_buffer_write: src is null", inf_buffer_write(buffer.get(), 0, nullptr, 1));
    EXPECT_OK(inf_buffer_write(buffer.get(), 0, nullptr, 0));
    EXPECT_OK(inf_buffer_write(buffer.get(), 256, nullptr, 0));
}

TEST_F(BufferTest, ReadRangeErrors) {
    Buffer buffer = make_buffer(device_.get(), 256);
    std::vector<unsigned char> host(512);
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "inf_buffer_read: src_offset (100) + bytes (200) exceeds buffer size (256)",
                 inf_buffer_read(buffer.get(), 100, host.data(), 200));
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "src_offset (1) + bytes (18446744073709551615) overflows 64 bits",
                 inf_buffer_read(buffer.get(), 1, host.data(), UINT64_MAX));
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "src_offset (300) + bytes (0) exceeds buffer size (256)",
                 inf_buffer_read(buffer.get(), 300, nullptr, 0));
}

TEST_F(BufferTest, ReadNullDestination) {
    Buffer buffer = make_buffer(device_.get(), 256);
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_buffer_read: dst is null", inf_buffer_read(buffer.get(), 0, nullptr, 16));
    EXPECT_OK(inf_buffer_read(buffer.get(), 10, nullptr, 0));
}

TEST_F(BufferTest, FailedWriteChangesNothing) {
    Buffer buffer = make_buffer(device_.get(), 256);
    const auto data = random_bytes(256, 3);
    ASSERT_OK(inf_buffer_write(buffer.get(), 0, data.data(), 256));
    const auto other = random_bytes(512, 4);
    EXPECT_STATUS(INF_STATUS_OUT_OF_RANGE, inf_buffer_write(buffer.get(), 200, other.data(), 100));
    EXPECT_EQ(read_all(buffer.get()), data);
}

// ---- lifetime ---------------------------------------------------------------------------------------

TEST(BufferLifetime, OutlivesItsDevice) {
    inf_test::check_buffer_outlives_device(INF_DEVICE_KIND_CPU, 0);
}

TEST(BufferLifetime, DestroyOnAnotherThread) {
    Device device = make_device();
    inf_test::check_destroy_on_other_thread(device.get());
}

TEST(BufferLifetime, DestroyWhileAnotherThreadUsesIt) {
    // Every call either sees the live buffer or INVALID_HANDLE; none touches freed memory (ASan checks).
    Device device = make_device();
    for (int round = 0; round < 50; ++round) {
        inf_buffer* buffer = nullptr;
        ASSERT_OK(inf_buffer_create(device.get(), 1 << 16, &buffer));
        std::atomic<bool> stop{false};
        std::atomic<int> unexpected{0};
        std::thread reader([&] {
            std::vector<unsigned char> host(1 << 16);
            const uint32_t pattern = 0x01020304U;
            while (!stop.load()) {
                const inf_status read = inf_buffer_read(buffer, 0, host.data(), host.size());
                const inf_status fill = inf_buffer_fill(buffer, 0, &pattern, 4, host.size() / 4);
                for (const inf_status status : {read, fill}) {
                    if (status != INF_STATUS_OK && status != INF_STATUS_INVALID_HANDLE) {
                        ++unexpected;
                    }
                }
                if (read == INF_STATUS_INVALID_HANDLE) {
                    break;
                }
            }
        });
        std::this_thread::yield();
        EXPECT_OK(inf_buffer_destroy(buffer));
        stop = true;
        reader.join();
        EXPECT_EQ(unexpected.load(), 0);
    }
}
