// Aborting a failed distributed step on every instance at once. An instance whose step fails after the exchange
// began tells the peers that wait on it (an abort message); they fail at once with PEER_FAILED "rank N aborted
// step S: <reason>" and tell their own peers, instead of waiting out their receive timeouts (20 s here). The
// reason keeps the original text, so "peer K" still names the instance that is really lost; the re-run of the
// step under a new step_id, without that instance, drops the leftovers and matches one instance.
#include <atomic>
#include <chrono>
#include <cstring>
#include <iostream>
#include <regex>
#include <thread>

#include "model_distributed_fixture.h"

using namespace model_test;
using inf_test::make_device;
using inf_test::pool_config;

namespace {

constexpr std::int32_t kPage = 16;
constexpr std::int32_t kChunk = 20;
constexpr std::int32_t kLongTimeoutMs = 20000;
constexpr double kPromptSeconds = 1.0;  // how soon after the failure every survivor must have returned
constexpr std::int32_t kReservedTag = 16384;  // the exchange's query tag (comm/communicator.h, step_exchange.h)

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point from, Clock::time_point to) {
    return std::chrono::duration<double>(to - from).count();
}

// The first "peer N" of a message, as the C# side reads it (PeerNumber: \bpeer (\d+)); -1 without one.
int first_peer(const std::string& message) {
    std::smatch match;
    static const std::regex pattern(R"(\bpeer (\d+))", std::regex::icase);
    return std::regex_search(message, match, pattern) ? std::stoi(match[1].str()) : -1;
}

DistSequence spread(std::int32_t home, std::vector<std::int32_t> cycle) {
    DistSequence s;
    s.home = home;
    for (std::int32_t i = 0; i < 8; ++i) s.owner.push_back(cycle[static_cast<std::size_t>(i) % cycle.size()]);
    return s;
}

// n (3 or 4) instances sharing one model. Sequence 0: home 0, pages on ranks 0, 1, 2 in turn. Sequence 1: home
// n-1, pages alternating with rank 0 (3 instances: rank 0 and rank 2 serve each other) or rank 2 (4 instances:
// rank 2 serves ranks 0 and 3, so an abort must travel 0 -> 2 -> 3).
struct Group {
    inf_model_config config = tiny_config();
    RandomWeights weights{config, INF_TENSOR_TYPE_F32, 500};
    inf_test::Device device = make_device();
    Model model = make_model(device.get(), config, weights);
    int n;
    Cluster cluster;
    SingleInstance single;
    std::vector<DistSequence> sequences;

    Group(int instances, std::int32_t timeout_ms)
        : n(instances),
          cluster(device.get(), instances, pool_config(INF_DTYPE_F32, 2, 2, 16, kPage, 16, 0), timeout_ms, 501),
          single(device.get(), pool_config(INF_DTYPE_F32, 2, 2, 16, kPage, 32, 0), 502) {
        sequences = {spread(0, {0, 1, 2}), spread(n - 1, {n - 1, n == 3 ? 0 : 2})};
        for (std::size_t s = 0; s < sequences.size(); ++s) {
            sequences[s].tokens = random_tokens(2 * kChunk, config.vocab_size, 503 + static_cast<std::uint32_t>(s));
        }
    }
    std::vector<inf_model*> models() const { return std::vector<inf_model*>(static_cast<std::size_t>(n), model.get()); }

    // Runs feeds as step_id on the ranks in run (all: null) and checks every rank succeeds and matches one instance.
    void run_ok(const std::vector<DistFeed>& feeds, std::int64_t step_id, const std::vector<bool>* run = nullptr) {
        auto plans = cluster.plans(sequences, feeds, step_id);
        std::vector<std::vector<float>> got, expected;
        std::vector<std::string> errors;
        const auto statuses = cluster.run(models(), plans, got, config.vocab_size, &errors, run);
        for (int r = 0; r < n; ++r) {
            if (run == nullptr || (*run)[static_cast<std::size_t>(r)]) {
                EXPECT_EQ(statuses[static_cast<std::size_t>(r)], INF_STATUS_OK) << "rank " << r << ": " << errors[static_cast<std::size_t>(r)];
            }
        }
        ASSERT_OK(single.run(model.get(), sequences, feeds, expected, config.vocab_size));
        ASSERT_EQ(got.size(), feeds.size());
        for (std::size_t f = 0; f < feeds.size(); ++f) {
            EXPECT_LT(relative_error(got[f], expected[f]), 1e-5) << "sequence " << feeds[f].sequence << ", step_id " << step_id;
        }
    }
};

// What every survivor of a failed step must show: PEER_FAILED (TIMEOUT for a rank that timed out itself)
// within kPromptSeconds of the failure, and a message whose first "peer N" is the lost rank.
struct Outcome {
    std::vector<inf_status> statuses;
    std::vector<std::string> errors;
    std::vector<double> seconds;  // from the failure to the rank's return
};

}  // namespace

// Rank 1 is lost while the others are inside step 11 (its endpoint is destroyed 150 ms after they started).
// Rank 0, waiting for rank 1's reply, finds it gone; ranks 2 (and 3, through rank 2) wait on rank 0, which is
// alive: they learn of the failure from the abort, not from their 20 s timeouts.
TEST(ModelDistributedFailure, LostPeerAbortsEverySurvivorAtOnce) {
    for (int n : {3, 4}) {
        SCOPED_TRACE(testing::Message() << n << " instances");
        Group group(n, kLongTimeoutMs);
        group.run_ok({{0, 0, kChunk}, {1, 0, kChunk}}, 10);
        if (testing::Test::HasFailure()) return;

        auto plans = group.cluster.plans(group.sequences, {{0, kChunk, kChunk}, {1, kChunk, kChunk}}, 11);
        std::vector<bool> survivors(static_cast<std::size_t>(n), true);
        survivors[1] = false;
        std::atomic<Clock::rep> killed{0};
        std::thread killer([&] {
            std::this_thread::sleep_for(std::chrono::milliseconds(150));
            killed = Clock::now().time_since_epoch().count();
            group.cluster.destroy_comm(1);
        });
        std::vector<std::vector<float>> logits;
        Outcome out;
        out.statuses = group.cluster.run(group.models(), plans, logits, group.config.vocab_size, &out.errors, &survivors);
        killer.join();
        const Clock::time_point kill_time{Clock::duration{killed.load()}};
        for (int r = 0; r < n; ++r) {
            if (r == 1) continue;
            const auto i = static_cast<std::size_t>(r);
            const std::string& error = out.errors[i];
            const double seconds = seconds_between(kill_time, group.cluster.returned()[i]);
            std::cout << "[ measured ] " << n << " instances: rank " << r << " returned " << seconds * 1000.0
                      << " ms after rank 1 was lost: " << error << "\n";
            EXPECT_EQ(out.statuses[i], INF_STATUS_PEER_FAILED) << "rank " << r << ": " << error;
            EXPECT_LT(seconds, kPromptSeconds) << "rank " << r << " waited instead of taking the abort: " << error;
            EXPECT_EQ(first_peer(error), 1) << "rank " << r << ": the lost instance must be the first \"peer N\": " << error;
        }
        EXPECT_EQ(out.errors[0].find("aborted"), std::string::npos) << "rank 0 saw the loss itself: " << out.errors[0];
        EXPECT_NE(out.errors[0].find("peer 1 is gone"), std::string::npos) << out.errors[0];
        // Rank 2 waits on rank 0 (its queries, and with 3 instances its replies as well).
        EXPECT_EQ(out.errors[2].find("inf_model_step: rank 0 aborted step 11: step exchange (step_id 11, layer "), 0U)
            << out.errors[2];
        EXPECT_NE(out.errors[2].find("waiting for the reply of rank 1): peer 1 is gone"), std::string::npos) << out.errors[2];
        if (n == 4) {
            // Rank 3 waits only on rank 2, which forwarded the abort it got from rank 0.
            EXPECT_NE(out.errors[3].find("rank 2 aborted step 11: rank 0 aborted step 11: "), std::string::npos) << out.errors[3];
        }

        // The re-run under a new id, without rank 1: sequence 1 (no page on rank 1) drops what step 11 left.
        group.run_ok({{1, kChunk, kChunk}}, 12, &survivors);
    }
}

// Rank 1 is alive but silent; rank 0 times out on it after 300 ms and aborts, so ranks 2 (and 3), whose
// timeouts are 20 s, return right after rank 0 does, naming the silent rank through rank 0's reason.
TEST(ModelDistributedFailure, TimeoutOnOnePeerAbortsTheOthers) {
    for (int n : {3, 4}) {
        SCOPED_TRACE(testing::Message() << n << " instances");
        Group group(n, kLongTimeoutMs);
        group.run_ok({{0, 0, kChunk}, {1, 0, kChunk}}, 20);
        if (testing::Test::HasFailure()) return;
        ASSERT_OK(inf_comm_set_timeout(group.cluster.comm(0), 300));
        auto plans = group.cluster.plans(group.sequences, {{0, kChunk, kChunk}, {1, kChunk, kChunk}}, 21);
        std::vector<bool> run(static_cast<std::size_t>(n), true);
        run[1] = false;
        std::vector<std::vector<float>> logits;
        std::vector<std::string> errors;
        const auto statuses = group.cluster.run(group.models(), plans, logits, group.config.vocab_size, &errors, &run);
        EXPECT_EQ(statuses[0], INF_STATUS_TIMEOUT) << errors[0];
        EXPECT_NE(errors[0].find("no message from peer 1"), std::string::npos) << errors[0];
        for (int r = 2; r < n; ++r) {
            const auto i = static_cast<std::size_t>(r);
            const double seconds = seconds_between(group.cluster.returned()[0], group.cluster.returned()[i]);
            std::cout << "[ measured ] " << n << " instances: rank " << r << " returned " << seconds * 1000.0
                      << " ms after rank 0 timed out: " << errors[i] << "\n";
            EXPECT_EQ(statuses[i], INF_STATUS_PEER_FAILED) << errors[i];
            EXPECT_LT(seconds, kPromptSeconds) << errors[i];
            EXPECT_EQ(first_peer(errors[i]), 1) << errors[i];
            EXPECT_NE(errors[i].find(" aborted step 21: "), std::string::npos) << errors[i];
        }
        // Rank 1 comes back; the leftovers (rank 0's queries and aborts of step 21) are dropped by step 22.
        ASSERT_OK(inf_comm_set_timeout(group.cluster.comm(0), kLongTimeoutMs));
        group.run_ok({{0, kChunk, kChunk}, {1, kChunk, kChunk}}, 22);
    }
}

namespace {

// Two instances, home on rank 0, pages alternating; rank 1 serves. The test plays rank 0 by hand.
struct Served {
    inf_model_config config = tiny_config();
    RandomWeights weights{config, INF_TENSOR_TYPE_F32, 510};
    inf_test::Device device = make_device();
    Model model = make_model(device.get(), config, weights);
    Cluster cluster{device.get(), 2, pool_config(INF_DTYPE_F32, 2, 2, 16, kPage, 16, 0), kLongTimeoutMs, 511};
    std::vector<DistSequence> sequences{spread(0, {0, 1})};

    Served() { sequences[0].tokens = random_tokens(kChunk, config.vocab_size, 512); }

    // An abort message of step_id as rank 0 would send it, whose header says the reason has length bytes.
    std::vector<std::int32_t> abort_message(std::int64_t step_id, std::int32_t length, const std::string& reason) const {
        const auto step = static_cast<std::uint64_t>(step_id);
        std::vector<std::int32_t> m = {0x48435849, 3, static_cast<std::int32_t>(step & 0xFFFFFFFFU), static_cast<std::int32_t>(step >> 32U),
                                       0, 0, length, config.q_heads * config.head_dim, config.kv_heads * config.head_dim,
                                       config.q_heads};
        m.resize(m.size() + (reason.size() + 3) / 4);
        std::memcpy(m.data() + 10, reason.data(), reason.size());
        return m;
    }
    void send_to_server(const std::vector<std::int32_t>& message) {
        ASSERT_OK(inf_comm_send(cluster.comm(0), 1, kReservedTag, message.data(), message.size() * sizeof(std::int32_t)));
    }
    // Runs rank 1's plan of step_id alone; its status, message and seconds taken.
    inf_status serve(std::int64_t step_id, std::string& error, double& seconds) {
        auto plans = cluster.plans(sequences, {{0, 0, kChunk}}, step_id);
        std::vector<std::vector<float>> logits;
        std::vector<std::string> errors;
        const std::vector<bool> only_server{false, true};
        const auto start = Clock::now();
        const auto statuses = cluster.run({model.get(), model.get()}, plans, logits, config.vocab_size, &errors, &only_server);
        seconds = seconds_between(start, Clock::now());
        error = errors[1];
        return statuses[1];
    }
};

}  // namespace

// A receiver takes an abort of its step at once, and reads a malformed one (a reason longer than the message,
// a negative length, control bytes) without trusting it; an abort of an older step is dropped.
TEST(ModelDistributedFailure, AbortMessagesAreCheckedAndStaleOnesDropped) {
    Served s;
    std::string error;
    double seconds = 0;
    s.send_to_server(s.abort_message(5, 11, "home failed"));
    EXPECT_EQ(s.serve(5, error, seconds), INF_STATUS_PEER_FAILED);
    EXPECT_NE(error.find("rank 0 aborted step 5: home failed"), std::string::npos) << error;
    EXPECT_EQ(first_peer(error), -1) << error;
    EXPECT_LT(seconds, kPromptSeconds);

    s.send_to_server(s.abort_message(6, 1 << 30, "short"));
    EXPECT_EQ(s.serve(6, error, seconds), INF_STATUS_PEER_FAILED);
    EXPECT_NE(error.find("rank 0 aborted step 6: (a malformed abort message: a reason of 1073741824 bytes in 8)"),
              std::string::npos)
        << error;
    s.send_to_server(s.abort_message(7, -4, ""));
    EXPECT_EQ(s.serve(7, error, seconds), INF_STATUS_PEER_FAILED);
    EXPECT_NE(error.find("rank 0 aborted step 7: (a malformed abort message: a reason of -4 bytes in 0)"), std::string::npos)
        << error;
    s.send_to_server(s.abort_message(8, 6, std::string("a\0b\x01" "cd", 6)));
    EXPECT_EQ(s.serve(8, error, seconds), INF_STATUS_PEER_FAILED);
    EXPECT_NE(error.find("rank 0 aborted step 8: a?b?cd"), std::string::npos) << error;

    // An abort of step 8 arriving during step 9 is left over: dropped. Rank 0 stays silent, so rank 1 waits
    // out a short timeout on the query it needs, not on the stale abort.
    s.send_to_server(s.abort_message(8, 4, "late"));
    ASSERT_OK(inf_comm_set_timeout(s.cluster.comm(1), 200));
    EXPECT_EQ(s.serve(9, error, seconds), INF_STATUS_TIMEOUT) << error;
    EXPECT_NE(error.find("waiting for queries from rank 0"), std::string::npos) << error;
    // An abort of a later step than the receiver runs is refused like any message of a later step.
    s.send_to_server(s.abort_message(11, 4, "next"));
    EXPECT_EQ(s.serve(10, error, seconds), INF_STATUS_PEER_FAILED);
    EXPECT_NE(error.find("rank 0 sent an abort of step_id 11 while this instance runs step_id 10"), std::string::npos) << error;
}
