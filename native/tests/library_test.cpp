// Library-level exports: versions, build info, status names, and the per-thread last error.
#include <cstddef>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "c_callers.h"
#include "test_util.h"

using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(Library, AbiVersionMatchesHeader) {
    EXPECT_EQ(inf_abi_version(), static_cast<uint32_t>(INF_ABI_VERSION));
}

TEST(Library, VersionIsMajorMinorPatch) {
    ASSERT_NE(inf_version(), nullptr);
    EXPECT_TRUE(std::regex_match(inf_version(), std::regex(R"(\d+\.\d+\.\d+)"))) << inf_version();
}

TEST(Library, BuildInfoNamesEveryPart) {
    const std::string info = inf_build_info();
    EXPECT_THAT(info, StartsWith(std::string("infinite ") + inf_version() + "\n"));
    for (const char* key : {"\ncompiler: ", "\nbuild type: ", "\ncuda: ", "\nmpi: ", "\ncpu: ", "\nsanitizers: "}) {
        EXPECT_THAT(info, HasSubstr(key));
    }
    EXPECT_TRUE(std::regex_search(info, std::regex("\ncuda: (plug-in built for archs [0-9a;]+ with nvcc [0-9.]+|not built)")))
        << info;
    EXPECT_TRUE(std::regex_search(info, std::regex("\nmpi: (found|not found|disabled)"))) << info;
#if defined(__SANITIZE_ADDRESS__)
    EXPECT_THAT(info, HasSubstr("sanitizers: address,undefined"));
#endif
}

TEST(Library, StatusNames) {
    const std::pair<inf_status, const char*> names[] = {
        {INF_STATUS_OK, "INF_STATUS_OK"},
        {INF_STATUS_INVALID_ARGUMENT, "INF_STATUS_INVALID_ARGUMENT"},
        {INF_STATUS_NULL_POINTER, "INF_STATUS_NULL_POINTER"},
        {INF_STATUS_INVALID_HANDLE, "INF_STATUS_INVALID_HANDLE"},
        {INF_STATUS_OUT_OF_RANGE, "INF_STATUS_OUT_OF_RANGE"},
        {INF_STATUS_OUT_OF_MEMORY, "INF_STATUS_OUT_OF_MEMORY"},
        {INF_STATUS_DEVICE_MISMATCH, "INF_STATUS_DEVICE_MISMATCH"},
        {INF_STATUS_BACKEND_UNAVAILABLE, "INF_STATUS_BACKEND_UNAVAILABLE"},
        {INF_STATUS_DEVICE_ERROR, "INF_STATUS_DEVICE_ERROR"},
        {INF_STATUS_UNSUPPORTED, "INF_STATUS_UNSUPPORTED"},
        {INF_STATUS_INTERNAL, "INF_STATUS_INTERNAL"},
        {INF_STATUS_TIMEOUT, "INF_STATUS_TIMEOUT"},
        {INF_STATUS_PEER_FAILED, "INF_STATUS_PEER_FAILED"},
    };
    for (const auto& [status, name] : names) {
        EXPECT_STREQ(inf_status_name(status), name);
    }
}

TEST(Library, UnknownStatusName) {
    for (const int32_t value : {13, 14, -1, 1000, INT32_MIN, INT32_MAX}) {
        EXPECT_STREQ(c_status_name(value), "INF_STATUS_UNKNOWN") << value;
    }
}

TEST(Library, StructLayoutIsTheSameInC) {
    EXPECT_EQ(c_sizeof_device_info(), sizeof(inf_device_info));
    EXPECT_EQ(c_sizeof_live_objects(), sizeof(inf_live_objects));
    EXPECT_EQ(sizeof(inf_live_objects), 64U);                // version 4: comms and comm_groups appended
    EXPECT_EQ(offsetof(inf_live_objects, comms), 48U);       // version 3 was 48 bytes
    EXPECT_EQ(offsetof(inf_live_objects, models), 40U);      // version 2 was 40 bytes
    EXPECT_EQ(offsetof(inf_live_objects, page_pools), 32U);  // version 1 was 32 bytes
}

TEST(LastError, EmptyOnAThreadWhereNothingFailed) {
    // The main thread may have failed calls from earlier tests; a new thread starts clean.
    std::string seen = "unset";
    std::thread([&] { seen = inf_last_error(); }).join();
    EXPECT_EQ(seen, "");
}

TEST(LastError, NamesTheFunctionAndTheArgument) {
    EXPECT_STATUS(INF_STATUS_NULL_POINTER, inf_device_create(INF_DEVICE_KIND_CPU, 0, nullptr));
    EXPECT_STREQ(inf_last_error(), "inf_device_create: out_device is null");
}

TEST(LastError, SurvivesSuccessfulCalls) {
    EXPECT_STATUS(INF_STATUS_NULL_POINTER, inf_device_count(INF_DEVICE_KIND_CPU, nullptr));
    const std::string failure = inf_last_error();
    int32_t count = 0;
    EXPECT_OK(inf_device_count(INF_DEVICE_KIND_CPU, &count));
    EXPECT_EQ(inf_last_error(), failure);
}

TEST(LastError, IsPerThread) {
    EXPECT_STATUS(INF_STATUS_NULL_POINTER, inf_device_count(INF_DEVICE_KIND_CPU, nullptr));
    const std::string mine = inf_last_error();
    EXPECT_EQ(mine, "inf_device_count: out_count is null");

    std::string before;
    std::string after;
    std::thread([&] {
        before = inf_last_error();
        inf_device* device = nullptr;
        EXPECT_STATUS(INF_STATUS_OUT_OF_RANGE, inf_device_create(INF_DEVICE_KIND_CPU, 5, &device));
        after = inf_last_error();
    }).join();
    EXPECT_EQ(before, "");  // the failure on this thread does not show on the other one
    EXPECT_THAT(after, HasSubstr("ordinal 5"));
    EXPECT_EQ(inf_last_error(), mine);  // and the other thread's failure does not show here
}

TEST(LastError, ConcurrentFailuresStayOnTheirThreads) {
    constexpr int kThreads = 8;
    std::vector<std::thread> threads;
    std::vector<int> mismatches(kThreads, 0);
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([t, &mismatches] {
            for (int i = 0; i < 500; ++i) {
                inf_device* device = nullptr;
                const int32_t ordinal = 100 + t;
                if (inf_device_create(INF_DEVICE_KIND_CPU, ordinal, &device) != INF_STATUS_OUT_OF_RANGE ||
                    std::string(inf_last_error()).find("ordinal " + std::to_string(ordinal) + ":") == std::string::npos) {
                    ++mismatches[static_cast<std::size_t>(t)];
                }
            }
        });
    }
    for (auto& thread : threads) {
        thread.join();
    }
    for (int t = 0; t < kThreads; ++t) {
        EXPECT_EQ(mismatches[static_cast<std::size_t>(t)], 0) << "thread " << t;
    }
}
