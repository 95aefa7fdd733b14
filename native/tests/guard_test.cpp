// guard(): every exception becomes a status and a message, and none escapes (internal unit test).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <new>
#include <stdexcept>
#include <string>

#include "core/status.h"

using ::testing::HasSubstr;

TEST(Guard, SuccessReturnsOkAndKeepsTheLastError) {
    inf::set_last_error("earlier", "failure");
    int ran = 0;
    EXPECT_EQ(inf::guard("f", [&] { ++ran; }), INF_STATUS_OK);
    EXPECT_EQ(ran, 1);
    EXPECT_STREQ(inf::last_error(), "earlier: failure");
}

TEST(Guard, ErrorKeepsItsStatusAndGetsTheFunctionName) {
    EXPECT_EQ(inf::guard("inf_thing", [] { inf::fail(INF_STATUS_OUT_OF_RANGE, "offset (", 5, ") too big"); }),
              INF_STATUS_OUT_OF_RANGE);
    EXPECT_STREQ(inf::last_error(), "inf_thing: offset (5) too big");
}

TEST(Guard, BadAllocIsOutOfMemory) {
    EXPECT_EQ(inf::guard("inf_thing", [] { throw std::bad_alloc(); }), INF_STATUS_OUT_OF_MEMORY);
    EXPECT_STREQ(inf::last_error(), "inf_thing: out of host memory");
}

TEST(Guard, StdExceptionIsInternal) {
    EXPECT_EQ(inf::guard("inf_thing", [] { throw std::runtime_error("boom"); }), INF_STATUS_INTERNAL);
    EXPECT_STREQ(inf::last_error(), "inf_thing: internal error: boom");
}

TEST(Guard, AnythingElseIsInternal) {
    EXPECT_EQ(inf::guard("inf_thing", [] { throw 42; }), INF_STATUS_INTERNAL);
    EXPECT_STREQ(inf::last_error(), "inf_thing: internal error: unknown exception");
}

TEST(Guard, IsNoexcept) {
    static_assert(noexcept(inf::guard("f", [] { throw 1; })));
}

TEST(Status, CatFormatsNumbersAndHex) {
    EXPECT_EQ(inf::cat("a", 1, ' ', uint64_t{18446744073709551615ULL}, ' ', inf::Hex{255}), "a1 18446744073709551615 0xff");
}
