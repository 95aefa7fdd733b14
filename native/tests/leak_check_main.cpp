// main() of the C ABI tests: after all tests of the process ran, no handle may be left alive.
// ctest runs every test in its own process, so this checks each test on its own.
#include "test_util.h"

namespace {

class NoLiveObjectsAtExit : public ::testing::Environment {
public:
    void TearDown() override {
        const inf_live_objects live = inf_test::live_objects();
        EXPECT_EQ(live.devices, 0) << "devices left alive";
        EXPECT_EQ(live.buffers, 0) << "buffers left alive";
        EXPECT_EQ(live.buffer_bytes, 0U) << "buffer bytes left alive";
        EXPECT_EQ(live.page_pools, 0) << "page pools left alive";
        EXPECT_EQ(live.models, 0) << "models left alive";
        EXPECT_EQ(live.comms, 0) << "communicators left alive";
        EXPECT_EQ(live.comm_groups, 0) << "communicator groups left alive";
    }
};

}  // namespace

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    ::testing::AddGlobalTestEnvironment(new NoLiveObjectsAtExit);
    return RUN_ALL_TESTS();
}
