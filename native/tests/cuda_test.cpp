// The real CUDA backend. Skips (naming the reason) where inf_backend_load(CUDA) fails; runs on GPUs.
#include <cstring>
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
using ::testing::StartsWith;

TEST(CudaAvailability, UnavailableReasonIsClear) {
    if (inf_backend_load(INF_DEVICE_KIND_CUDA) == INF_STATUS_OK) {
        int32_t count = 0;
        EXPECT_OK(inf_device_count(INF_DEVICE_KIND_CUDA, &count));
        EXPECT_GE(count, 1);
        return;
    }
    const std::string reason = inf_last_error();
    if (std::string(inf_build_info()).find("\ncuda: not built") != std::string::npos) {
        EXPECT_EQ(reason,
                  "inf_backend_load: CUDA backend not built (INFINITE_CUDA=OFF or no CUDA compiler at build time)");
    } else {
        // Built, but this machine cannot run it: the message names the plug-in and the runtime's reason.
        EXPECT_THAT(reason, StartsWith("inf_backend_load: CUDA backend unavailable: "));
        EXPECT_THAT(reason, HasSubstr("libinfinite_cuda.so"));
    }
    int32_t count = -1;
    EXPECT_OK(inf_device_count(INF_DEVICE_KIND_CUDA, &count));
    EXPECT_EQ(count, 0);
}

class Cuda : public ::testing::Test {
protected:
    void SetUp() override {
        if (inf_backend_load(INF_DEVICE_KIND_CUDA) != INF_STATUS_OK) {
            GTEST_SKIP() << "no CUDA device: " << inf_last_error();
        }
        ASSERT_OK(inf_device_count(INF_DEVICE_KIND_CUDA, &count_));
        device_ = make_device(INF_DEVICE_KIND_CUDA, 0);
        ASSERT_NE(device_, nullptr);
    }

    int32_t count_ = 0;
    Device device_;
};

TEST_F(Cuda, DeviceInfo) {
    inf_device_info info{};
    info.size = sizeof info;
    ASSERT_OK(inf_device_get_info(INF_DEVICE_KIND_CUDA, 0, &info));
    EXPECT_EQ(info.kind, INF_DEVICE_KIND_CUDA);
    EXPECT_EQ(info.ordinal, 0);
    EXPECT_GT(std::strlen(info.name), 0U);
    EXPECT_GT(info.compute_units, 0);
    EXPECT_GE(info.capability_major, 1);
    EXPECT_GT(info.total_memory, 0U);
    EXPECT_GT(info.free_memory, 0U);
    EXPECT_LE(info.free_memory, info.total_memory);
    EXPECT_EQ(info.features, 0U);
    inf_device_info queried{};
    queried.size = sizeof queried;
    ASSERT_OK(inf_device_query(device_.get(), &queried));
    EXPECT_STREQ(queried.name, info.name);
    EXPECT_EQ(queried.total_memory, info.total_memory);
}

TEST_F(Cuda, OrdinalOutOfRange) {
    inf_device_info info{};
    info.size = sizeof info;
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "ordinal " + std::to_string(count_) + ": there ",
                 inf_device_get_info(INF_DEVICE_KIND_CUDA, count_, &info));
}

TEST_F(Cuda, RoundTrip) {
    inf_test::check_round_trip(device_.get());
}

TEST_F(Cuda, FillPatterns) {
    inf_test::check_fill_patterns(device_.get());
}

TEST_F(Cuda, LargeFillAtEveryAlignmentOfTheWideStores) {
    // Offsets 0, 4 and 6 give the 16-byte kernel a head, a body and a tail of different lengths.
    constexpr uint64_t kBytes = (uint64_t{16} << 20) + 64;
    Buffer buffer = make_buffer(device_.get(), kBytes);
    const unsigned char pattern[8] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF};
    for (const uint32_t width : {2U, 4U, 8U}) {
        for (const uint64_t offset : {0ULL, 4ULL, 6ULL}) {
            if (offset % width != 0) {
                continue;
            }
            ASSERT_OK(inf_buffer_fill(buffer.get(), 0, pattern, 1, kBytes));  // known background
            const uint64_t count = (kBytes - offset - 32) / width;
            ASSERT_OK(inf_buffer_fill(buffer.get(), offset, pattern, width, count));
            const auto bytes = read_all(buffer.get());
            for (uint64_t i = 0; i < kBytes; ++i) {
                const bool inside = i >= offset && i < offset + count * width;
                const unsigned char want = inside ? pattern[(i - offset) % width] : pattern[0];
                ASSERT_EQ(bytes[i], want) << "byte " << i << ", width " << width << ", offset " << offset;
            }
        }
    }
}

TEST_F(Cuda, OverlappingCopy) {
    inf_test::check_overlapping_copy(device_.get(), 4096 + 7);
}

TEST_F(Cuda, OverlappingCopyLargerThanTheScratchChunk) {
    inf_test::check_overlapping_copy(device_.get(), (uint64_t{80} << 20) + 3);
}

TEST_F(Cuda, CopyWithCpu) {
    Device cpu = make_device(INF_DEVICE_KIND_CPU, 0);
    inf_test::check_copy_between(cpu.get(), device_.get());
    inf_test::check_copy_between(device_.get(), cpu.get());
}

TEST_F(Cuda, CopyBetweenGpus) {
    if (count_ < 2) {
        GTEST_SKIP() << "needs two GPUs, found " << count_;
    }
    Device second = make_device(INF_DEVICE_KIND_CUDA, 1);
    inf_test::check_copy_between(device_.get(), second.get());
}

TEST_F(Cuda, OutOfMemoryIsReportedAndNotSticky) {
    inf_buffer* buffer = nullptr;
    EXPECT_ERROR(INF_STATUS_OUT_OF_MEMORY,
                 "inf_buffer_create: cudaMalloc(1125899906842624 bytes) on cuda:0: cudaErrorMemoryAllocation",
                 inf_buffer_create(device_.get(), uint64_t{1} << 50, &buffer));
    EXPECT_EQ(buffer, nullptr);
    inf_test::check_round_trip(device_.get());
}

TEST_F(Cuda, BufferOutlivesDevice) {
    inf_test::check_buffer_outlives_device(INF_DEVICE_KIND_CUDA, 0);
}

TEST_F(Cuda, DestroyOnAnotherThread) {
    inf_test::check_destroy_on_other_thread(device_.get());
}

TEST_F(Cuda, Synchronize) {
    Buffer buffer = make_buffer(device_.get(), 1 << 20);
    const uint32_t pattern = 0x7FC00000U;
    ASSERT_OK(inf_buffer_fill(buffer.get(), 0, &pattern, 4, (1 << 20) / 4));
    EXPECT_OK(inf_device_synchronize(device_.get()));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_device_synchronize: device is null", inf_device_synchronize(nullptr));
}
