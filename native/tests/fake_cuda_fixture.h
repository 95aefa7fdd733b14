// Tests against the fake CUDA plug-in (fake_cuda_plugin.cpp): its counters, and a fixture that loads it and,
// after each test, checks that the core passed it no bad pointer and leaked no device memory.
#pragma once

#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "fake_cuda_stats.h"
#include "test_util.h"

// The fake plug-in's counters (it must already be loaded: the CUDA backend opened it).
inline inf_fake_cuda_stats_t fake_stats() {
    inf_fake_cuda_stats_t stats{};
    void* library = dlopen(FAKE_PLUGIN_PATH, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
    EXPECT_NE(library, nullptr) << "the fake plug-in is not loaded";
    if (library == nullptr) {
        return stats;
    }
    void* symbol = dlsym(library, "inf_fake_cuda_stats");
    if (symbol != nullptr) {
        inf_fake_cuda_stats_fn get = nullptr;
        std::memcpy(&get, &symbol, sizeof get);
        get(&stats);
    }
    dlclose(library);
    return stats;
}

// Runs only under ctest with INFINITE_TEST_SCENARIO equal to the scenario the fake plug-in is told to play.
class FakeCudaTest : public ::testing::Test {
protected:
    explicit FakeCudaTest(const char* scenario) : scenario_(scenario) {}

    void SetUp() override {
        const char* scenario = std::getenv("INFINITE_TEST_SCENARIO");
        if (scenario == nullptr || std::string(scenario) != scenario_) {
            GTEST_SKIP() << "runs under ctest, with INFINITE_TEST_SCENARIO=" << scenario_;
        }
        ASSERT_OK(inf_backend_load(INF_DEVICE_KIND_CUDA));
    }
    void TearDown() override {
        if (IsSkipped()) {
            return;
        }
        const inf_fake_cuda_stats_t stats = fake_stats();
        EXPECT_EQ(stats.bad_calls, 0) << "the core passed the plug-in a bad pointer, range or ordinal";
        EXPECT_EQ(stats.live_allocations, 0) << "device memory leaked";
    }

private:
    const char* scenario_;
};
