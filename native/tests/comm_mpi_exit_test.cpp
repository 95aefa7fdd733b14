// A rank's process dies (rank 2 of 3 calls _exit(1)); the survivors must see a clean error naming it within their
// timeout, never a hang or a crash, and still exchange with each other. Run by ctest as comm_mpi_np3_rank_exit
// under `mpirun --enable-recovery` (Open MPI 4.1 kills every rank when one exits otherwise).
//
// Open MPI 4.1 (no ULFM) never reports a dead rank through MPI calls: a receive from it finds nothing until the
// communicator's timeout (TIMEOUT naming "peer 2"; PEER_FAILED would need ULFM's MPIX_ functions), and a small
// send to it completes locally. mpirun --enable-recovery exits 0 whatever the ranks return, so ranks 0 and 1
// meet at the end and rank 0 prints one verdict line, which ctest reads (PASS_REGULAR_EXPRESSION).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "comm_test_util.h"

using inf_test::Comm;
using inf_test::comm_info;

namespace {

using Clock = std::chrono::steady_clock;

constexpr int32_t kTimeoutMs = 1500;
constexpr int32_t kLost = 2;
constexpr int32_t kVerdictTag = 9;

class CommMpiRankExit : public ::testing::Test {
protected:
    void SetUp() override {
        inf_comm* comm = nullptr;
        ASSERT_OK(inf_comm_create_mpi(&comm));
        comm_.reset(comm);
        ASSERT_OK(inf_comm_set_timeout(comm_.get(), kTimeoutMs));
        const inf_comm_info info = comm_info(comm_.get());
        rank_ = info.rank;
        ASSERT_EQ(info.group_size, 3) << "run under mpirun -np 3 --enable-recovery";
    }

    // Ranks 0 and 1 meet here whatever failed: rank 1 sends its verdict, rank 0 prints both.
    void TearDown() override {
        if (comm_ == nullptr || rank_ == kLost) return;
        const int32_t mine = HasFailure() ? 1 : 0;
        if (rank_ == 1) {
            EXPECT_OK(inf_comm_send(comm_.get(), 0, kVerdictTag, &mine, sizeof mine));
            return;
        }
        ASSERT_OK(inf_comm_set_timeout(comm_.get(), 30000));  // rank 1 may still be in its own waits
        int32_t theirs = 1;
        uint64_t bytes = 0;
        ASSERT_OK(inf_comm_recv(comm_.get(), 1, kVerdictTag, &theirs, sizeof theirs, &bytes));
        EXPECT_EQ(theirs, 0) << "rank 1 failed (its messages above)";
        if (mine == 0 && theirs == 0) {
            std::printf("survivors: ranks 0 and 1 passed after rank %d exited\n", kLost);
            std::fflush(stdout);
        }
    }

    // A receive-side call on the lost rank: an error naming it, within the timeout and a margin.
    template <class Call>
    void expect_lost(const char* what, Call call) {
        const auto start = Clock::now();
        const inf_status status = call();
        const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
        const std::string error = status == INF_STATUS_OK ? "" : inf_last_error();
        std::printf("rank %d: %s from the lost rank: %s after %.3f s: %s\n", rank_, what, inf_status_name(status), seconds,
                    error.c_str());
        EXPECT_TRUE(status == INF_STATUS_TIMEOUT || status == INF_STATUS_PEER_FAILED) << what << ": " << error;
        EXPECT_NE(error.find("peer 2"), std::string::npos) << error;
        EXPECT_LT(seconds, kTimeoutMs / 1000.0 + 2.0) << what;
    }

    Comm comm_;
    int32_t rank_ = -1;
};

}  // namespace

TEST_F(CommMpiRankExit, SurvivorsNameTheLostRankAndGoOn) {
    // Everyone reaches everyone first, so the lost rank was alive and connected when it went.
    for (int32_t peer = 0; peer < 3; ++peer) {
        if (peer != rank_) ASSERT_OK(inf_comm_send(comm_.get(), peer, 1, &rank_, sizeof rank_));
    }
    for (int32_t peer = 0; peer < 3; ++peer) {
        if (peer == rank_) continue;
        int32_t got = -1;
        uint64_t bytes = 0;
        ASSERT_OK(inf_comm_recv(comm_.get(), peer, 1, &got, sizeof got, &bytes));
        ASSERT_EQ(got, peer);
    }
    if (rank_ == kLost) {
        std::fflush(stdout);
        _exit(1);  // no MPI_Finalize, no destructors: as a crash would leave
    }
    std::vector<unsigned char> buffer(16);
    uint64_t bytes = 0;
    expect_lost("probe", [&] { return inf_comm_probe(comm_.get(), kLost, 2, &bytes); });
    expect_lost("receive", [&] { return inf_comm_recv(comm_.get(), kLost, 2, buffer.data(), buffer.size(), &bytes); });
    // A small send to it is queued (sends never wait) or refused; either way it returns.
    const int32_t word = 7;
    const inf_status sent = inf_comm_send(comm_.get(), kLost, 2, &word, sizeof word);
    EXPECT_TRUE(sent == INF_STATUS_OK || sent == INF_STATUS_PEER_FAILED) << inf_last_error();

    // Ranks 0 and 1 still exchange, from empty to rendezvous-sized messages, both ways.
    const int32_t other = 1 - rank_;
    for (const std::size_t length : {std::size_t{0}, std::size_t{100}, std::size_t{1} << 20}) {
        const auto out = inf_test::random_bytes(length, 1000U * static_cast<std::uint64_t>(rank_) + length);
        ASSERT_OK(inf_comm_send(comm_.get(), other, 3, out.data(), out.size()));
        std::vector<unsigned char> in(length + 1);
        ASSERT_OK(inf_comm_recv(comm_.get(), other, 3, in.data(), in.size(), &bytes));
        ASSERT_EQ(bytes, length);
        in.resize(length);
        EXPECT_EQ(in, inf_test::random_bytes(length, 1000U * static_cast<std::uint64_t>(other) + length));
    }
}
