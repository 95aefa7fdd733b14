// Backends and devices: counts, info, create/destroy/query/synchronize and all their error paths.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "c_callers.h"
#include "test_util.h"


using inf_test::Device;
using inf_test::make_device;
using ::testing::HasSubstr;

namespace {

inf_device_info blank_info() {
    inf_device_info info;
    std::memset(&info, 0xAB, sizeof info);
    info.size = sizeof info;
    return info;
}

// The features the kernel reports in /proc/cpuinfo: an independent source (the library uses CPUID).
uint32_t expected_cpu_features() {
    uint32_t features = 0;
#if defined(__x86_64__) || defined(__i386__)
    std::ifstream cpuinfo("/proc/cpuinfo");
    std::string line;
    while (std::getline(cpuinfo, line)) {
        if (line.rfind("flags", 0) != 0) {
            continue;
        }
        std::istringstream words(line.substr(line.find(':') + 1));
        std::string flag;
        while (words >> flag) {
            if (flag == "avx2") features |= INF_CPU_FEATURE_AVX2;
            if (flag == "fma") features |= INF_CPU_FEATURE_FMA;
            if (flag == "avx512f") features |= INF_CPU_FEATURE_AVX512F;
            if (flag == "avx512_bf16") features |= INF_CPU_FEATURE_AVX512BF16;
            if (flag == "f16c") features |= INF_CPU_FEATURE_F16C;
        }
        break;
    }
#endif
    return features;
}

void expect_cpu_info(const inf_device_info& info) {
    EXPECT_EQ(info.size, sizeof(inf_device_info));
    EXPECT_EQ(info.kind, INF_DEVICE_KIND_CPU);
    EXPECT_EQ(info.ordinal, 0);
    EXPECT_EQ(info.compute_units, static_cast<int32_t>(std::max(1U, std::thread::hardware_concurrency())));
    EXPECT_GT(info.total_memory, 0U);
    EXPECT_GT(info.free_memory, 0U);
    EXPECT_LE(info.free_memory, info.total_memory);
    EXPECT_EQ(info.capability_major, 0);
    EXPECT_EQ(info.capability_minor, 0);
    EXPECT_EQ(info.features, expected_cpu_features());
    EXPECT_EQ(info.reserved, 0U);
    const void* terminator = std::memchr(info.name, '\0', sizeof info.name);
    ASSERT_NE(terminator, nullptr) << "name is zero-terminated";
    EXPECT_GT(std::strlen(info.name), 0U);
}

}  // namespace

// ---- backends and counts ----------------------------------------------------------------------------

TEST(Backend, CpuAlwaysLoads) {
    EXPECT_OK(inf_backend_load(INF_DEVICE_KIND_CPU));
}

TEST(Backend, InvalidKindIsRefused) {
    for (const int32_t kind : {2, 7, -1}) {
        EXPECT_STATUS(INF_STATUS_INVALID_ARGUMENT, c_backend_load(kind));
        EXPECT_THAT(inf_last_error(), HasSubstr("inf_backend_load: kind (" + std::to_string(kind) + ")"));
    }
}

TEST(Backend, CudaUnavailableMeansZeroDevices) {
    if (inf_backend_load(INF_DEVICE_KIND_CUDA) == INF_STATUS_OK) {
        GTEST_SKIP() << "a CUDA device is present (covered by infinite_cuda_tests)";
    }
    const std::string reason = inf_last_error();
    EXPECT_THAT(reason, HasSubstr("inf_backend_load: CUDA backend"));
    int32_t count = -1;
    EXPECT_OK(inf_device_count(INF_DEVICE_KIND_CUDA, &count));
    EXPECT_EQ(count, 0);

    // Calls that need the backend repeat the same reason.
    inf_device_info info = blank_info();
    EXPECT_STATUS(INF_STATUS_BACKEND_UNAVAILABLE, inf_device_get_info(INF_DEVICE_KIND_CUDA, 0, &info));
    EXPECT_EQ(std::string(inf_last_error()).substr(std::strlen("inf_device_get_info: ")),
              reason.substr(std::strlen("inf_backend_load: ")));
    inf_device* device = nullptr;
    EXPECT_STATUS(INF_STATUS_BACKEND_UNAVAILABLE, inf_device_create(INF_DEVICE_KIND_CUDA, 0, &device));
    EXPECT_EQ(device, nullptr);
}

TEST(DeviceCount, CpuIsOne) {
    int32_t count = 0;
    EXPECT_OK(inf_device_count(INF_DEVICE_KIND_CPU, &count));
    EXPECT_EQ(count, 1);
}

TEST(DeviceCount, Errors) {
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_device_count: out_count is null",
                 inf_device_count(INF_DEVICE_KIND_CPU, nullptr));
    int32_t count = 42;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "inf_device_count: kind (7)", c_device_count(7, &count));
    EXPECT_EQ(count, 42);
}

// ---- inf_device_get_info ------------------------------------------------------------------------------

TEST(DeviceGetInfo, Cpu) {
    inf_device_info info = blank_info();
    ASSERT_OK(inf_device_get_info(INF_DEVICE_KIND_CPU, 0, &info));
    expect_cpu_info(info);
}

TEST(DeviceGetInfo, OrdinalOutOfRange) {
    inf_device_info info = blank_info();
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "inf_device_get_info: ordinal 3: there is 1 cpu device",
                 inf_device_get_info(INF_DEVICE_KIND_CPU, 3, &info));
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "ordinal -1: there is 1 cpu device",
                 inf_device_get_info(INF_DEVICE_KIND_CPU, -1, &info));
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "ordinal 1:", inf_device_get_info(INF_DEVICE_KIND_CPU, 1, &info));
}

TEST(DeviceGetInfo, NullAndBadKind) {
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_device_get_info: out_info is null",
                 inf_device_get_info(INF_DEVICE_KIND_CPU, 0, nullptr));
    inf_device_info info = blank_info();
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "kind (9)", c_device_get_info(9, 0, &info));
}

TEST(DeviceGetInfo, SizeTooSmallWritesNothing) {
    for (const uint32_t size : {0U, 4U, static_cast<uint32_t>(sizeof(inf_device_info) - 1)}) {
        inf_device_info info = blank_info();
        info.size = size;
        EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "inf_device_get_info: out_info->size (" + std::to_string(size) + ")",
                     inf_device_get_info(INF_DEVICE_KIND_CPU, 0, &info));
        const inf_device_info untouched = [&] {
            inf_device_info copy = blank_info();
            copy.size = size;
            return copy;
        }();
        EXPECT_EQ(std::memcmp(&info, &untouched, sizeof info), 0);
    }
}

TEST(DeviceGetInfo, LargerStructFromANewerCallerKeepsItsTail) {
    struct Newer {
        inf_device_info v1;
        unsigned char appended[24];
    } newer;
    std::memset(&newer, 0xCD, sizeof newer);
    newer.v1.size = sizeof newer;
    ASSERT_OK(inf_device_get_info(INF_DEVICE_KIND_CPU, 0, &newer.v1));
    EXPECT_EQ(newer.v1.size, sizeof newer);  // size is the caller's, left as it was
    EXPECT_EQ(newer.v1.kind, INF_DEVICE_KIND_CPU);
    for (const unsigned char byte : newer.appended) {
        EXPECT_EQ(byte, 0xCD);  // bytes this library does not know are not written
    }
}

// ---- create / destroy -------------------------------------------------------------------------------

TEST(DeviceCreate, CpuAndDestroy) {
    inf_device* device = nullptr;
    ASSERT_OK(inf_device_create(INF_DEVICE_KIND_CPU, 0, &device));
    EXPECT_NE(device, nullptr);
    EXPECT_OK(inf_device_destroy(device));
}

TEST(DeviceCreate, TwoHandlesOnOneDeviceAreIndependent) {
    Device first = make_device();
    Device second = make_device();
    EXPECT_NE(first.get(), second.get());
    EXPECT_OK(inf_device_synchronize(first.get()));
    EXPECT_OK(inf_device_synchronize(second.get()));
}

TEST(DeviceCreate, Errors) {
    inf_device* device = reinterpret_cast<inf_device*>(0x1234);
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "inf_device_create: ordinal 1: there is 1 cpu device",
                 inf_device_create(INF_DEVICE_KIND_CPU, 1, &device));
    EXPECT_EQ(device, nullptr) << "out_device is cleared on failure";
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_device_create: out_device is null",
                 inf_device_create(INF_DEVICE_KIND_CPU, 0, nullptr));
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "inf_device_create: kind (7) is not an inf_device_kind",
                 c_device_create(7, 0, &device));
}

TEST(DeviceDestroy, NullIsANoOp) {
    EXPECT_OK(inf_device_destroy(nullptr));
}

TEST(DeviceDestroy, TwiceIsAnInvalidHandle) {
    inf_device* device = nullptr;
    ASSERT_OK(inf_device_create(INF_DEVICE_KIND_CPU, 0, &device));
    ASSERT_OK(inf_device_destroy(device));
    EXPECT_ERROR(INF_STATUS_INVALID_HANDLE, "inf_device_destroy: device (", inf_device_destroy(device));
    EXPECT_THAT(inf_last_error(), HasSubstr("is not a live device handle"));
}

// ---- query / synchronize ----------------------------------------------------------------------------

TEST(DeviceQuery, MatchesGetInfo) {
    Device device = make_device();
    inf_device_info queried = blank_info();
    ASSERT_OK(inf_device_query(device.get(), &queried));
    expect_cpu_info(queried);
    inf_device_info described = blank_info();
    ASSERT_OK(inf_device_get_info(INF_DEVICE_KIND_CPU, 0, &described));
    EXPECT_STREQ(queried.name, described.name);
    EXPECT_EQ(queried.total_memory, described.total_memory);
    EXPECT_EQ(queried.features, described.features);
}

TEST(DeviceQuery, Errors) {
    Device device = make_device();
    inf_device_info info = blank_info();
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_device_query: device is null", inf_device_query(nullptr, &info));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_device_query: out_info is null", inf_device_query(device.get(), nullptr));
    info.size = 8;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "inf_device_query: out_info->size (8) is smaller than sizeof(inf_device_info)",
                 inf_device_query(device.get(), &info));
}

TEST(DeviceSynchronize, CpuAndErrors) {
    Device device = make_device();
    EXPECT_OK(inf_device_synchronize(device.get()));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_device_synchronize: device is null", inf_device_synchronize(nullptr));
}

TEST(DeviceCreate, ConcurrentCreateAndDestroy) {
    const int64_t devices_before = inf_test::live_objects().devices;
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&failures] {
            for (int i = 0; i < 300; ++i) {
                inf_device* device = nullptr;
                if (inf_device_create(INF_DEVICE_KIND_CPU, 0, &device) != INF_STATUS_OK ||
                    inf_device_synchronize(device) != INF_STATUS_OK || inf_device_destroy(device) != INF_STATUS_OK) {
                    ++failures;
                }
            }
        });
    }
    for (auto& thread : threads) {
        thread.join();
    }
    EXPECT_EQ(failures.load(), 0);
    EXPECT_EQ(inf_test::live_objects().devices, devices_before);
}
