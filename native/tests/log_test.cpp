// The log callback: levels, the level filter, user_data, the stderr default, concurrency.
#include <atomic>
#include <thread>
#include <vector>

#include "c_callers.h"
#include "test_util.h"

using inf_test::LogCapture;
using ::testing::HasSubstr;

namespace {

// Creating and destroying a CPU device logs one DEBUG line each; a buffer logs one each too.
void open_and_close_device() {
    inf_device* device = nullptr;
    ASSERT_OK(inf_device_create(INF_DEVICE_KIND_CPU, 0, &device));
    inf_buffer* buffer = nullptr;
    ASSERT_OK(inf_buffer_create(device, 512, &buffer));
    ASSERT_OK(inf_buffer_destroy(buffer));
    ASSERT_OK(inf_device_destroy(device));
}

}  // namespace

TEST(Log, DebugLinesForDevicesAndBuffers) {
    LogCapture capture(INF_LOG_LEVEL_DEBUG);
    open_and_close_device();
    EXPECT_EQ(capture.count(INF_LOG_LEVEL_DEBUG, "device cpu:0 opened"), 1U);
    EXPECT_EQ(capture.count(INF_LOG_LEVEL_DEBUG, "device cpu:0 released"), 1U);
    EXPECT_EQ(capture.count(INF_LOG_LEVEL_DEBUG, "buffer of 512 bytes allocated on cpu:0"), 1U);
    EXPECT_EQ(capture.count(INF_LOG_LEVEL_DEBUG, "buffer of 512 bytes freed on cpu:0"), 1U);
    for (const auto& line : capture.lines()) {
        EXPECT_FALSE(line.message.empty());
        EXPECT_NE(line.message.back(), '\n') << "lines come without a trailing newline";
    }
}

TEST(Log, DefaultLevelFiltersDebug) {
    LogCapture capture(INF_LOG_LEVEL_WARNING);  // the default level
    open_and_close_device();
    EXPECT_EQ(capture.count(INF_LOG_LEVEL_DEBUG, ""), 0U);
}

TEST(Log, LevelFilterIsInclusive) {
    {
        LogCapture capture(INF_LOG_LEVEL_INFO);  // DEBUG is below INFO
        open_and_close_device();
        EXPECT_TRUE(capture.lines().empty());
    }
    {
        LogCapture capture(INF_LOG_LEVEL_TRACE);  // TRACE lets DEBUG through
        open_and_close_device();
        EXPECT_EQ(capture.count(INF_LOG_LEVEL_DEBUG, "device cpu:0 opened"), 1U);
    }
    {
        LogCapture capture(INF_LOG_LEVEL_NONE);
        open_and_close_device();
        EXPECT_TRUE(capture.lines().empty());
    }
}

TEST(Log, UserDataIsPassedThrough) {
    struct Seen {
        std::atomic<int> lines{0};
        std::atomic<bool> wrong_user_data{false};
    } seen;
    static Seen* expected = nullptr;
    expected = &seen;
    auto callback = [](void* user_data, inf_log_level, const char*) {
        auto* s = static_cast<Seen*>(user_data);
        if (s != expected) {
            expected->wrong_user_data = true;
            return;
        }
        ++s->lines;
    };
    ASSERT_OK(inf_set_log_callback(callback, &seen));
    ASSERT_OK(inf_set_log_level(INF_LOG_LEVEL_DEBUG));
    open_and_close_device();
    EXPECT_OK(inf_set_log_callback(nullptr, nullptr));
    EXPECT_OK(inf_set_log_level(INF_LOG_LEVEL_WARNING));
    EXPECT_EQ(seen.lines.load(), 4);
    EXPECT_FALSE(seen.wrong_user_data.load());
}

TEST(Log, NullCallbackWritesToStderr) {
    ASSERT_OK(inf_set_log_callback(nullptr, nullptr));
    ASSERT_OK(inf_set_log_level(INF_LOG_LEVEL_DEBUG));
    ::testing::internal::CaptureStderr();
    open_and_close_device();
    const std::string err = ::testing::internal::GetCapturedStderr();
    EXPECT_OK(inf_set_log_level(INF_LOG_LEVEL_WARNING));
    EXPECT_THAT(err, HasSubstr("[infinite] DEBUG: device cpu:0 opened\n"));
}

TEST(Log, ReplacingTheCallbackStopsTheOldOne) {
    int first = 0;
    int second = 0;
    auto count = [](void* user_data, inf_log_level, const char*) { ++*static_cast<int*>(user_data); };
    ASSERT_OK(inf_set_log_level(INF_LOG_LEVEL_DEBUG));
    ASSERT_OK(inf_set_log_callback(count, &first));
    open_and_close_device();
    ASSERT_OK(inf_set_log_callback(count, &second));
    open_and_close_device();
    EXPECT_OK(inf_set_log_callback(nullptr, nullptr));
    EXPECT_OK(inf_set_log_level(INF_LOG_LEVEL_WARNING));
    EXPECT_EQ(first, 4);
    EXPECT_EQ(second, 4);
}

TEST(Log, InvalidLevelIsRefused) {
    for (const int32_t level : {-1, 6, 100}) {
        EXPECT_STATUS(INF_STATUS_INVALID_ARGUMENT, c_set_log_level(level));
        EXPECT_THAT(inf_last_error(), HasSubstr("inf_set_log_level: level (" + std::to_string(level) + ")"));
    }
    // The refused value did not change the level: DEBUG lines are still filtered.
    LogCapture capture(INF_LOG_LEVEL_WARNING);
    EXPECT_STATUS(INF_STATUS_INVALID_ARGUMENT, c_set_log_level(-1));
    open_and_close_device();
    EXPECT_TRUE(capture.lines().empty());
}

TEST(Log, ConcurrentLinesAllArrive) {
    LogCapture capture(INF_LOG_LEVEL_DEBUG);
    constexpr int kThreads = 4;
    constexpr int kRounds = 50;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([] {
            for (int i = 0; i < kRounds; ++i) {
                open_and_close_device();
            }
        });
    }
    for (auto& thread : threads) {
        thread.join();
    }
    EXPECT_EQ(capture.count(INF_LOG_LEVEL_DEBUG, "device cpu:0 opened"), static_cast<std::size_t>(kThreads * kRounds));
    EXPECT_EQ(capture.lines().size(), static_cast<std::size_t>(4 * kThreads * kRounds));
}
