// The MPI communicator, run by ctest under mpirun (2 and 4 ranks): info, a ring, all-to-all, probes and
// oversized receives, page migration between ranks, timeouts and argument checks. Every rank runs the same
// tests in the same order (creating endpoints is collective). One endpoint lives for the whole suite, so
// MPI stays initialised between tests and is finalised when it goes, at the end.
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "comm_test_util.h"

using inf_test::Comm;
using inf_test::comm_info;

namespace {

using Clock = std::chrono::steady_clock;

Comm make_mpi() {
    inf_comm* comm = nullptr;
    EXPECT_OK(inf_comm_create_mpi(&comm));
    return Comm(comm);
}

// Deterministic contents of message (src, dst, tag, seq): both ends can build it.
std::vector<unsigned char> payload(int32_t src, int32_t dst, int32_t tag, int32_t seq, std::size_t length) {
    auto bytes = inf_test::random_bytes(length, static_cast<std::uint64_t>((src * 1000 + dst) * 100000 + tag * 100 + seq));
    return bytes;
}

class CommMpi : public ::testing::Test {
protected:
    // One endpoint lives from the first test to the last, so MPI is not finalised (it cannot start again)
    // between tests. Suite-level, not a global environment: the leak check of main() runs in the global
    // tear-down and must find it gone.
    static void SetUpTestSuite() { keeper_ = make_mpi(); }
    static void TearDownTestSuite() { keeper_.reset(); }

    void SetUp() override {
        comm_ = make_mpi();
        ASSERT_NE(comm_, nullptr);
        ASSERT_OK(inf_comm_set_timeout(comm_.get(), 20000));
        const inf_comm_info info = comm_info(comm_.get());
        rank_ = info.rank;
        size_ = info.group_size;
    }

    static inline Comm keeper_;
    Comm comm_;
    int32_t rank_ = 0;
    int32_t size_ = 1;
};

}  // namespace

TEST_F(CommMpi, InfoNamesTheWorld) {
    const inf_comm_info info = comm_info(comm_.get());
    EXPECT_EQ(info.kind, INF_COMM_KIND_MPI);
    EXPECT_GE(info.group_size, 2) << "run under mpirun -np 2 or more";
    EXPECT_GE(info.rank, 0);
    EXPECT_LT(info.rank, info.group_size);
    EXPECT_EQ(info.timeout_ms, 20000);
}

TEST_F(CommMpi, RingOfSizes) {
    const int32_t next = (rank_ + 1) % size_;
    const int32_t previous = (rank_ + size_ - 1) % size_;
    const std::vector<std::size_t> lengths = {0, 1, 4096, 100000, 3 << 20};
    for (std::size_t i = 0; i < lengths.size(); ++i) {
        const auto bytes = payload(rank_, next, 1, static_cast<int32_t>(i), lengths[i]);
        ASSERT_OK(inf_comm_send(comm_.get(), next, 1, bytes.data(), bytes.size()));
    }
    for (std::size_t i = 0; i < lengths.size(); ++i) {
        uint64_t length = 0;
        ASSERT_OK(inf_comm_probe(comm_.get(), previous, 1, &length));
        ASSERT_EQ(length, lengths[i]);
        std::vector<unsigned char> got(lengths[i]);
        ASSERT_OK(inf_comm_recv(comm_.get(), previous, 1, got.data(), got.size(), &length));
        ASSERT_EQ(length, lengths[i]);
        EXPECT_EQ(got, payload(previous, rank_, 1, static_cast<int32_t>(i), lengths[i])) << "message " << i;
    }
    const inf_comm_info info = comm_info(comm_.get());
    EXPECT_EQ(info.messages_sent, lengths.size());
    EXPECT_EQ(info.messages_received, lengths.size());
}

TEST_F(CommMpi, AllToAllInOrderPerPeerAndTag) {
    constexpr int32_t kTags = 3;
    constexpr int32_t kMessages = 20;
    const auto length = [](int32_t src, int32_t dst, int32_t tag, int32_t seq) {
        return static_cast<std::size_t>((src * 37 + dst * 11 + tag * 5 + seq * 97) % 9000);
    };
    for (int32_t seq = 0; seq < kMessages; ++seq) {
        for (int32_t peer = 0; peer < size_; ++peer) {
            for (int32_t tag = 0; tag < kTags; ++tag) {
                const auto bytes = payload(rank_, peer, tag, seq, length(rank_, peer, tag, seq));
                ASSERT_OK(inf_comm_send(comm_.get(), peer, tag, bytes.data(), bytes.size()));
            }
        }
    }
    std::vector<unsigned char> got(9000);
    for (int32_t tag = kTags - 1; tag >= 0; --tag) {
        for (int32_t peer = size_ - 1; peer >= 0; --peer) {
            for (int32_t seq = 0; seq < kMessages; ++seq) {
                uint64_t bytes = 0;
                ASSERT_OK(inf_comm_recv(comm_.get(), peer, tag, got.data(), got.size(), &bytes));
                const auto expected = payload(peer, rank_, tag, seq, length(peer, rank_, tag, seq));
                ASSERT_EQ(bytes, expected.size());
                ASSERT_TRUE(std::equal(expected.begin(), expected.end(), got.begin()))
                    << "peer " << peer << " tag " << tag << " seq " << seq;
            }
        }
    }
}

TEST_F(CommMpi, OversizedReceiveLeavesTheMessageQueued) {
    const int32_t next = (rank_ + 1) % size_;
    const int32_t previous = (rank_ + size_ - 1) % size_;
    ASSERT_OK(inf_comm_send(comm_.get(), next, 2, "0123456789", 10));
    ASSERT_OK(inf_comm_send(comm_.get(), next, 2, nullptr, 0));
    char small[4];
    uint64_t bytes = 0;
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "is 10 bytes, more than capacity (4)",
                 inf_comm_recv(comm_.get(), previous, 2, small, sizeof small, &bytes));
    char data[16] = {};
    ASSERT_OK(inf_comm_recv(comm_.get(), previous, 2, data, sizeof data, &bytes));
    EXPECT_EQ(std::string(data, bytes), "0123456789");
    ASSERT_OK(inf_comm_recv(comm_.get(), previous, 2, nullptr, 0, &bytes));
    EXPECT_EQ(bytes, 0U);
}

TEST_F(CommMpi, EndpointsDoNotSeeEachOthersMessages) {
    Comm other = make_mpi();
    const int32_t next = (rank_ + 1) % size_;
    const int32_t previous = (rank_ + size_ - 1) % size_;
    ASSERT_OK(inf_comm_send(other.get(), next, 3, "other", 5));
    ASSERT_OK(inf_comm_set_timeout(comm_.get(), 100));
    uint64_t bytes = 0;
    EXPECT_STATUS(INF_STATUS_TIMEOUT, inf_comm_probe(comm_.get(), previous, 3, &bytes));
    char data[8];
    ASSERT_OK(inf_comm_recv(other.get(), previous, 3, data, sizeof data, &bytes));
    EXPECT_EQ(std::string(data, bytes), "other");
}

TEST_F(CommMpi, TimeoutNamesPeerTagAndWait) {
    ASSERT_OK(inf_comm_set_timeout(comm_.get(), 100));
    const int32_t peer = (rank_ + 1) % size_;
    char data[8];
    uint64_t bytes = 0;
    const auto start = Clock::now();
    EXPECT_ERROR(INF_STATUS_TIMEOUT,
                 "no message from peer " + std::to_string(peer) + " with tag 4 within 100 ms",
                 inf_comm_recv(comm_.get(), peer, 4, data, sizeof data, &bytes));
    const double waited = std::chrono::duration<double>(Clock::now() - start).count();
    EXPECT_GE(waited, 0.095);
    EXPECT_LT(waited, 5.0);
}

TEST_F(CommMpi, BadArgumentsNameTheArgument) {
    char data[4] = {};
    uint64_t bytes = 0;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "peer (" + std::to_string(size_) + ") is not a rank of the group",
                 inf_comm_send(comm_.get(), size_, 0, data, 1));
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "tag (32768)", inf_comm_recv(comm_.get(), 0, 32768, data, 4, &bytes));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "data is null", inf_comm_send(comm_.get(), 0, 0, nullptr, 1));
}

TEST_F(CommMpi, PagesMigrateBetweenRanks) {
    constexpr int32_t kPageSize = 16;
    const inf_page_pool_config config = inf_test::pool_config(INF_DTYPE_BF16, 2, 2, 16, kPageSize, 4, 8);
    auto device = inf_test::make_device();
    // Pool of rank r: pages 1 and 3 hold keys and values seeded by r.
    const auto build = [&](int32_t owner) {
        auto pool = inf_test::make_pool(device.get(), config);
        const int32_t tokens = 2 * kPageSize;
        std::vector<int32_t> pages(tokens);
        std::vector<int32_t> slots(tokens);
        for (int32_t t = 0; t < tokens; ++t) {
            pages[static_cast<std::size_t>(t)] = t < kPageSize ? 1 : 3;
            slots[static_cast<std::size_t>(t)] = t % kPageSize;
        }
        for (int32_t layer = 0; layer < 2; ++layer) {
            const auto k = inf_test::random_floats(tokens * 2 * 16, static_cast<uint32_t>(owner * 10 + layer), 2.0F);
            const auto v = inf_test::random_floats(tokens * 2 * 16, static_cast<uint32_t>(owner * 10 + layer + 5), 2.0F);
            EXPECT_OK(inf_page_pool_append(pool.get(), layer, tokens, pages.data(), slots.data(), k.data(), v.data()));
        }
        return pool;
    };
    const int32_t next = (rank_ + 1) % size_;
    const int32_t previous = (rank_ + size_ - 1) % size_;
    auto mine = build(rank_);
    const int32_t sent[2] = {3, 1};
    ASSERT_OK(inf_page_pool_send_pages(comm_.get(), next, 5, mine.get(), sent, 2));
    auto received = inf_test::make_pool(device.get(), config);
    const int32_t stored[2] = {0, 2};
    ASSERT_OK(inf_page_pool_recv_pages(comm_.get(), previous, 5, received.get(), stored, 2));

    auto theirs = build(previous);  // what the previous rank sent, rebuilt here
    const std::size_t floats = 2 * kPageSize * 16;
    std::vector<float> expected(2 * floats);
    std::vector<float> got(2 * floats);
    std::vector<float> expected_summary(2 * 2 * 2 * 16);
    std::vector<float> got_summary(expected_summary.size());
    for (int32_t layer = 0; layer < 2; ++layer) {
        for (int i = 0; i < 2; ++i) {
            ASSERT_OK(inf_page_pool_read_page(theirs.get(), layer, sent[i], expected.data(), expected.data() + floats));
            ASSERT_OK(inf_page_pool_read_page(received.get(), layer, stored[i], got.data(), got.data() + floats));
            EXPECT_EQ(expected, got) << "layer " << layer << " page " << sent[i];
            ASSERT_OK(inf_page_pool_read_summary(theirs.get(), layer, sent[i], expected_summary.data()));
            ASSERT_OK(inf_page_pool_read_summary(received.get(), layer, stored[i], got_summary.data()));
            EXPECT_EQ(expected_summary, got_summary) << "layer " << layer << " page " << sent[i];
        }
    }
}
