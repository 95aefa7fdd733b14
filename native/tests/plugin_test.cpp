// The CUDA plug-in loader and the core's CUDA paths, against the fake plug-in and broken plug-ins.
//
// The plug-in loads once per process, so each scenario runs in its own process: ctest sets
// INFINITE_TEST_SCENARIO (see CMakeLists.txt) and the environment below points the core at the
// scenario's library before anything loads. Run by hand without it, every test here skips.
#include <dlfcn.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/plugin_abi.h"
#include "device_checks.h"
#include "fake_cuda_stats.h"
#include "test_util.h"

using inf_test::Buffer;
using inf_test::Device;
using inf_test::LogCapture;
using inf_test::LogLine;
using inf_test::make_buffer;
using inf_test::make_device;
using ::testing::HasSubstr;
using ::testing::StartsWith;

namespace {

constexpr const char* kMissingPath = "/nonexistent/infinite/libinfinite_cuda.so";

std::string scenario() {
    const char* value = std::getenv("INFINITE_TEST_SCENARIO");
    return value != nullptr ? value : "";
}

// What the first inf_backend_load(CUDA) of the process returned and logged.
struct FirstLoad {
    bool done = false;
    inf_status status = INF_STATUS_INTERNAL;
    std::string message;
    std::vector<LogLine> lines;
};
FirstLoad g_first_load;

class ScenarioEnvironment : public ::testing::Environment {
public:
    void SetUp() override {
        const std::string name = scenario();
        std::string plugin;
        std::string fake_mode;
        if (name == "fake" || name == "fake_race") {
            plugin = FAKE_PLUGIN_PATH;
        } else if (name == "fake_model") {
            plugin = FAKE_PLUGIN_PATH;
            fake_mode = "model";
        } else if (name == "init_error" || name == "no_devices" || name == "abi_mismatch") {
            plugin = FAKE_PLUGIN_PATH;
            fake_mode = name;
        } else if (name == "missing") {
            plugin = kMissingPath;
        } else if (name == "not_elf") {
            plugin = NOT_A_LIBRARY_PATH;
        } else if (name == "no_entry") {
            plugin = CORE_LIBRARY_PATH;
        } else {
            return;
        }
        ASSERT_EQ(setenv("INFINITE_CUDA_PLUGIN", plugin.c_str(), 1), 0);
        ASSERT_EQ(setenv("INFINITE_FAKE_CUDA", fake_mode.c_str(), 1), 0);
        if (name == "fake_race") {
            return;  // that test loads from many threads at once
        }
        LogCapture capture(INF_LOG_LEVEL_INFO);
        g_first_load.status = inf_backend_load(INF_DEVICE_KIND_CUDA);
        g_first_load.message = inf_last_error();
        g_first_load.lines = capture.lines();
        g_first_load.done = true;
    }
};

const auto* const g_environment = ::testing::AddGlobalTestEnvironment(new ScenarioEnvironment);

#define REQUIRE_SCENARIO(name)                                                                          \
    do {                                                                                                \
        if (scenario() != (name)) {                                                                     \
            GTEST_SKIP() << "runs under ctest, with INFINITE_TEST_SCENARIO=" << (name);                 \
        }                                                                                               \
    } while (0)

inf_fake_cuda_stats_t fake_stats() {
    inf_fake_cuda_stats_t stats{};
    // The core loaded the fake with RTLD_LOCAL; RTLD_NOLOAD finds that same copy.
    void* library = dlopen(FAKE_PLUGIN_PATH, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
    EXPECT_NE(library, nullptr) << "the fake plug-in is not loaded";
    if (library == nullptr) {
        return stats;
    }
    void* symbol = dlsym(library, "inf_fake_cuda_stats");
    EXPECT_NE(symbol, nullptr);
    if (symbol != nullptr) {
        inf_fake_cuda_stats_fn get = nullptr;
        std::memcpy(&get, &symbol, sizeof get);
        get(&stats);
    }
    dlclose(library);
    return stats;
}

// The unavailable scenarios: the first load failed with `reason` (after "inf_backend_load: "),
// logged it once as a WARNING, and every later call repeats it without logging again.
void expect_unavailable(const std::string& reason_start, const std::string& reason_part) {
    ASSERT_TRUE(g_first_load.done);
    EXPECT_EQ(g_first_load.status, INF_STATUS_BACKEND_UNAVAILABLE) << g_first_load.message;
    EXPECT_THAT(g_first_load.message, StartsWith("inf_backend_load: " + reason_start));
    EXPECT_THAT(g_first_load.message, HasSubstr(reason_part));
    const std::string reason = g_first_load.message.substr(std::strlen("inf_backend_load: "));
    ASSERT_EQ(g_first_load.lines.size(), 1U);
    EXPECT_EQ(g_first_load.lines[0].level, INF_LOG_LEVEL_WARNING);
    EXPECT_EQ(g_first_load.lines[0].message, reason);

    LogCapture again(INF_LOG_LEVEL_TRACE);
    EXPECT_STATUS(INF_STATUS_BACKEND_UNAVAILABLE, inf_backend_load(INF_DEVICE_KIND_CUDA));
    EXPECT_EQ(inf_last_error(), g_first_load.message);
    int32_t count = -1;
    EXPECT_OK(inf_device_count(INF_DEVICE_KIND_CUDA, &count));
    EXPECT_EQ(count, 0);
    inf_device_info info{};
    info.size = sizeof info;
    EXPECT_STATUS(INF_STATUS_BACKEND_UNAVAILABLE, inf_device_get_info(INF_DEVICE_KIND_CUDA, 0, &info));
    EXPECT_EQ(inf_last_error(), "inf_device_get_info: " + reason);
    inf_device* device = nullptr;
    EXPECT_STATUS(INF_STATUS_BACKEND_UNAVAILABLE, inf_device_create(INF_DEVICE_KIND_CUDA, 0, &device));
    EXPECT_EQ(inf_last_error(), "inf_device_create: " + reason);
    EXPECT_TRUE(again.lines().empty()) << "the failure is logged once per process";

    // The CPU is unaffected.
    Device cpu = make_device();
    EXPECT_NE(cpu, nullptr);
}

}  // namespace

// ---- the fake plug-in: two working "GPUs" --------------------------------------------------------------

class FakeCuda : public ::testing::Test {
protected:
    void SetUp() override { REQUIRE_SCENARIO("fake"); }
    void TearDown() override {
        if (IsSkipped()) {
            return;
        }
        const inf_fake_cuda_stats_t stats = fake_stats();
        EXPECT_EQ(stats.bad_calls, 0) << "the core passed the plug-in a bad pointer, range or ordinal";
        EXPECT_EQ(stats.live_allocations, 0) << "device memory leaked";
    }
};

TEST_F(FakeCuda, LoadsAndLogsAtInfo) {
    ASSERT_TRUE(g_first_load.done);
    EXPECT_EQ(g_first_load.status, INF_STATUS_OK) << g_first_load.message;
    ASSERT_EQ(g_first_load.lines.size(), 1U);
    EXPECT_EQ(g_first_load.lines[0].level, INF_LOG_LEVEL_INFO);
    EXPECT_EQ(g_first_load.lines[0].message,
              std::string("loaded CUDA plug-in ") + FAKE_PLUGIN_PATH + " (fake CUDA plug-in for tests): 2 devices");
}

TEST_F(FakeCuda, CountAndInfo) {
    int32_t count = 0;
    ASSERT_OK(inf_device_count(INF_DEVICE_KIND_CUDA, &count));
    EXPECT_EQ(count, 2);
    for (int32_t ordinal = 0; ordinal < 2; ++ordinal) {
        inf_device_info info{};
        info.size = sizeof info;
        ASSERT_OK(inf_device_get_info(INF_DEVICE_KIND_CUDA, ordinal, &info));
        EXPECT_EQ(info.kind, INF_DEVICE_KIND_CUDA);
        EXPECT_EQ(info.ordinal, ordinal);
        EXPECT_EQ(std::string(info.name), "Fake CUDA Device " + std::to_string(ordinal));
        EXPECT_EQ(info.compute_units, 4 + ordinal);
        EXPECT_EQ(info.capability_major, 9);
        EXPECT_EQ(info.capability_minor, 0);
        EXPECT_EQ(info.total_memory, uint64_t{64} << 20);
        EXPECT_EQ(info.free_memory, uint64_t{64} << 20);
        EXPECT_EQ(info.features, 0U);
    }
}

TEST_F(FakeCuda, OrdinalOutOfRange) {
    inf_device_info info{};
    info.size = sizeof info;
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "inf_device_get_info: ordinal 2: there are 2 cuda devices",
                 inf_device_get_info(INF_DEVICE_KIND_CUDA, 2, &info));
    inf_device* device = nullptr;
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "inf_device_create: ordinal -1: there are 2 cuda devices",
                 inf_device_create(INF_DEVICE_KIND_CUDA, -1, &device));
}

TEST_F(FakeCuda, QueryShowsFreeMemoryAndSynchronizeReachesThePlugin) {
    Device device = make_device(INF_DEVICE_KIND_CUDA, 1);
    Buffer buffer = make_buffer(device.get(), 1 << 20);
    inf_device_info info{};
    info.size = sizeof info;
    ASSERT_OK(inf_device_query(device.get(), &info));
    EXPECT_EQ(info.ordinal, 1);
    EXPECT_EQ(info.free_memory, (uint64_t{64} << 20) - (1 << 20));
    const int64_t before = fake_stats().synchronize_calls;
    EXPECT_OK(inf_device_synchronize(device.get()));
    EXPECT_EQ(fake_stats().synchronize_calls, before + 1);
    inf_device_kind kind = INF_DEVICE_KIND_CPU;
    int32_t ordinal = -1;
    EXPECT_OK(inf_buffer_location(buffer.get(), &kind, &ordinal));
    EXPECT_EQ(kind, INF_DEVICE_KIND_CUDA);
    EXPECT_EQ(ordinal, 1);
}

TEST_F(FakeCuda, RoundTrip) {
    Device device = make_device(INF_DEVICE_KIND_CUDA, 0);
    inf_test::check_round_trip(device.get());
}

TEST_F(FakeCuda, FillPatterns) {
    Device device = make_device(INF_DEVICE_KIND_CUDA, 1);
    inf_test::check_fill_patterns(device.get());
}

TEST_F(FakeCuda, OverlappingCopy) {
    Device device = make_device(INF_DEVICE_KIND_CUDA, 0);
    inf_test::check_overlapping_copy(device.get(), 4096 + 7);
}

TEST_F(FakeCuda, CopyCpuToGpuAndBack) {
    Device cpu = make_device(INF_DEVICE_KIND_CPU, 0);
    Device gpu = make_device(INF_DEVICE_KIND_CUDA, 0);
    inf_test::check_copy_between(cpu.get(), gpu.get());
    inf_test::check_copy_between(gpu.get(), cpu.get());
}

TEST_F(FakeCuda, CopyBetweenGpusGoesPeerToPeer) {
    Device first = make_device(INF_DEVICE_KIND_CUDA, 0);
    Device second = make_device(INF_DEVICE_KIND_CUDA, 1);
    const int64_t before = fake_stats().peer_copies;
    inf_test::check_copy_between(first.get(), second.get());
    EXPECT_EQ(fake_stats().peer_copies, before + 2);
}

TEST_F(FakeCuda, OutOfMemoryCarriesThePluginMessage) {
    Device device = make_device(INF_DEVICE_KIND_CUDA, 0);
    inf_buffer* buffer = nullptr;
    EXPECT_ERROR(INF_STATUS_OUT_OF_MEMORY,
                 "inf_buffer_create: cudaMalloc(134217728 bytes) on cuda:0: cudaErrorMemoryAllocation: out of memory",
                 inf_buffer_create(device.get(), uint64_t{128} << 20, &buffer));
    EXPECT_EQ(buffer, nullptr);
    Buffer fits = make_buffer(device.get(), uint64_t{32} << 20);  // and the device still works
    EXPECT_NE(fits, nullptr);
}

TEST_F(FakeCuda, BufferOutlivesDevice) {
    inf_test::check_buffer_outlives_device(INF_DEVICE_KIND_CUDA, 1);
}

TEST_F(FakeCuda, DestroyOnAnotherThread) {
    Device device = make_device(INF_DEVICE_KIND_CUDA, 1);
    inf_test::check_destroy_on_other_thread(device.get());
}

TEST_F(FakeCuda, RangeChecksComeBeforeThePlugin) {
    Device device = make_device(INF_DEVICE_KIND_CUDA, 0);
    Buffer buffer = make_buffer(device.get(), 256);
    unsigned char host[512] = {};
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "dst_offset (100) + bytes (200) exceeds buffer size (256)",
                 inf_buffer_write(buffer.get(), 100, host, 200));
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "src_offset (1) + bytes (256) exceeds buffer size (256)",
                 inf_buffer_read(buffer.get(), 1, host, 256));
    const uint16_t pattern = 1;
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "exceeds buffer size (256)", inf_buffer_fill(buffer.get(), 2, &pattern, 2, 128));
}

// ---- the first load races on many threads -------------------------------------------------------------

TEST(FakeCudaRace, ConcurrentFirstLoadsLoadOnce) {
    REQUIRE_SCENARIO("fake_race");
    LogCapture capture(INF_LOG_LEVEL_INFO);
    std::atomic<int> loaded{0};
    std::atomic<int> counted{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&] {
            if (inf_backend_load(INF_DEVICE_KIND_CUDA) == INF_STATUS_OK) {
                ++loaded;
            }
            int32_t count = 0;
            if (inf_device_count(INF_DEVICE_KIND_CUDA, &count) == INF_STATUS_OK && count == 2) {
                ++counted;
            }
        });
    }
    for (auto& thread : threads) {
        thread.join();
    }
    EXPECT_EQ(loaded.load(), 8);
    EXPECT_EQ(counted.load(), 8);
    EXPECT_EQ(capture.count(INF_LOG_LEVEL_INFO, "loaded CUDA plug-in"), 1U);
}

// ---- broken or absent plug-ins ------------------------------------------------------------------------

TEST(CudaInitError, ThePluginsMessageReachesTheCaller) {
    REQUIRE_SCENARIO("init_error");
    expect_unavailable(std::string("CUDA backend unavailable: ") + FAKE_PLUGIN_PATH + ": ",
                       "cudaGetDeviceCount: cudaErrorInsufficientDriver: CUDA driver version is insufficient for "
                       "CUDA runtime version");
}

TEST(CudaNoDevices, SaysSo) {
    REQUIRE_SCENARIO("no_devices");
    expect_unavailable(std::string("CUDA backend unavailable: ") + FAKE_PLUGIN_PATH + ": ", "no CUDA device found");
}

TEST(CudaAbiMismatch, SaysWhichVersion) {
    REQUIRE_SCENARIO("abi_mismatch");
    expect_unavailable(std::string("CUDA backend unavailable: ") + FAKE_PLUGIN_PATH,
                       "does not implement plug-in ABI version " + std::to_string(INF_PLUGIN_ABI_VERSION));
}

TEST(CudaPluginMissing, NamesThePathAndTheLoaderError) {
    REQUIRE_SCENARIO("missing");
    expect_unavailable("CUDA backend unavailable: cannot load libinfinite_cuda.so: ",
                       std::string(kMissingPath) + ": cannot open shared object file");
}

TEST(CudaPluginNotElf, NamesThePath) {
    REQUIRE_SCENARIO("not_elf");
    expect_unavailable("CUDA backend unavailable: cannot load libinfinite_cuda.so: ", NOT_A_LIBRARY_PATH);
}

TEST(CudaPluginNoEntryPoint, NamesTheMissingSymbol) {
    REQUIRE_SCENARIO("no_entry");
    expect_unavailable(std::string("CUDA backend unavailable: ") + CORE_LIBRARY_PATH +
                           " is not an Infinite CUDA plug-in: ",
                       "inf_cuda_plugin_get");
}
