// The distributed forward step (DistAttention over in-process instances): a sequence's pages spread over
// instances in several patterns must give the logits of one instance with one big pool, step for step
// (chunked prefill, then greedy decode); bad exchange fields fail naming the field; a lost or silent peer
// fails the step with the communicator's status; a message left over from an aborted step is dropped.
#include <chrono>
#include <cmath>
#include <thread>

#include "model_distributed_fixture.h"

using namespace model_test;
using inf_test::make_device;
using inf_test::pool_config;

namespace {

constexpr std::int32_t kPage = 16;
constexpr std::int32_t kPrompt = 50;  // prefill in chunks of 20: the chunks straddle pages of different ranks
constexpr std::int32_t kChunk = 20;
constexpr std::int32_t kDecode = 6;
constexpr std::int32_t kMaxPages = 8;
constexpr std::int32_t kTimeoutMs = 20000;  // generous (sanitizer builds); failures below use short ones

// owner[i] for i < kMaxPages from a rule.
template <class Rule>
std::vector<std::int32_t> owners(Rule rule) {
    std::vector<std::int32_t> out;
    for (std::int32_t i = 0; i < kMaxPages; ++i) out.push_back(rule(i));
    return out;
}

struct Scenario {
    int instances = 2;
    std::vector<DistSequence> sequences;  // tokens filled in by run_scenario
    inf_dtype dtype = INF_DTYPE_F32;
    double tolerance = 1e-5;
    bool null_positions = false;  // ranks whose tables are pages 0, 1, ... pass page_positions = null
    bool model_per_instance = false;
    const inf_sparse_step* sparse = nullptr;  // every rank's plan and the single instance's step take it
    std::int32_t logical_page_size = 0;       // > 0: the pools keep summaries (page selection)
};

// Feeds of one prefill chunk (every sequence that still has prompt left) or one decode step.
std::vector<DistFeed> chunk_feeds(std::size_t sequences, std::int32_t first, std::int32_t count) {
    std::vector<DistFeed> feeds;
    for (std::size_t s = 0; s < sequences; ++s) feeds.push_back({static_cast<std::int32_t>(s), first, count});
    return feeds;
}

void run_scenario(Scenario scenario, std::uint32_t seed) {
    const auto device = make_device();
    const inf_model_config config = tiny_config(INF_ROPE_STYLE_HALF);
    const RandomWeights weights(config, INF_TENSOR_TYPE_F32, seed);
    std::vector<Model> owned;
    owned.push_back(make_model(device.get(), config, weights));
    std::vector<inf_model*> models;
    for (int r = 0; r < scenario.instances; ++r) {
        if (scenario.model_per_instance && r > 0) owned.push_back(make_model(device.get(), config, weights));
        models.push_back(owned.back().get());
    }
    ASSERT_NE(models[0], nullptr);
    for (std::size_t s = 0; s < scenario.sequences.size(); ++s) {
        scenario.sequences[s].tokens = random_tokens(kPrompt, config.vocab_size, seed + 10 + static_cast<std::uint32_t>(s));
    }
    const auto seqs = scenario.sequences.size();
    const std::int32_t vocab = config.vocab_size;
    const std::int32_t logical = scenario.logical_page_size;
    Cluster cluster(device.get(), scenario.instances, pool_config(scenario.dtype, 2, 2, 16, kPage, 48, logical), kTimeoutMs, seed);
    SingleInstance single(device.get(), pool_config(scenario.dtype, 2, 2, 16, kPage, 64, logical), seed + 1);

    std::int64_t step_id = 100;
    std::vector<std::vector<float>> got, expected;
    auto step = [&](const std::vector<DistFeed>& feeds) {
        auto plans = cluster.plans(scenario.sequences, feeds, step_id++, scenario.null_positions);
        for (RankPlan& p : plans) p.plan.sparse = scenario.sparse;
        std::vector<std::string> errors;
        const auto statuses = cluster.run(models, plans, got, vocab, &errors);
        for (int r = 0; r < scenario.instances; ++r) {
            EXPECT_EQ(statuses[static_cast<std::size_t>(r)], INF_STATUS_OK) << "rank " << r << ": " << errors[static_cast<std::size_t>(r)];
        }
        ASSERT_OK(single.run(models[0], scenario.sequences, feeds, expected, vocab, scenario.sparse));
        ASSERT_EQ(got.size(), feeds.size());
        for (std::size_t f = 0; f < feeds.size(); ++f) {
            SCOPED_TRACE(testing::Message() << "sequence " << feeds[f].sequence << " positions " << feeds[f].first << ".."
                                            << feeds[f].first + feeds[f].count - 1);
            EXPECT_LT(relative_error(got[f], expected[f]), scenario.tolerance);
        }
    };
    for (std::int32_t first = 0; first < kPrompt; first += kChunk) {
        step(chunk_feeds(seqs, first, std::min(kChunk, kPrompt - first)));
        if (testing::Test::HasFailure()) return;
    }
    // Greedy decode: both runs must pick the same next token every step.
    for (std::int32_t d = 0; d < kDecode; ++d) {
        for (std::size_t s = 0; s < seqs; ++s) {
            const auto rows = static_cast<std::int32_t>(expected[s].size() / static_cast<std::size_t>(vocab));
            const std::int32_t want = argmax_row(expected[s], rows - 1, vocab);
            EXPECT_EQ(argmax_row(got[s], rows - 1, vocab), want) << "sequence " << s << ", decode step " << d;
            scenario.sequences[s].tokens.push_back(want);
        }
        step(chunk_feeds(seqs, kPrompt + d, 1));
        if (testing::Test::HasFailure()) return;
    }
}

DistSequence placed(std::int32_t home, std::vector<std::int32_t> owner) {
    DistSequence s;
    s.home = home;
    s.owner = std::move(owner);
    return s;
}

}  // namespace

TEST(ModelDistributed, AlternatingPagesMatchOneInstance) {
    for (int n : {2, 4}) {
        SCOPED_TRACE(testing::Message() << n << " instances");
        Scenario s;
        s.instances = n;
        s.sequences = {placed(0, owners([n](std::int32_t i) { return i % n; }))};
        run_scenario(s, 200 + static_cast<std::uint32_t>(n));
    }
}

TEST(ModelDistributed, FirstHalfRemoteMatchesOneInstance) {
    for (int n : {2, 4}) {
        SCOPED_TRACE(testing::Message() << n << " instances");
        Scenario s;
        s.instances = n;
        s.sequences = {placed(0, owners([n](std::int32_t i) { return i < 2 ? 1 + i % (n - 1) : 0; }))};
        run_scenario(s, 210 + static_cast<std::uint32_t>(n));
    }
}

// The home keeps pages 0 and 1 and passes page_positions = null (default positions); every later token's
// K and V travel to the peer that stores its page.
TEST(ModelDistributed, NewTokensOnPeersWithDefaultPositions) {
    for (int n : {2, 4}) {
        SCOPED_TRACE(testing::Message() << n << " instances");
        Scenario s;
        s.instances = n;
        s.null_positions = true;
        s.sequences = {placed(0, owners([n](std::int32_t i) { return i < 2 ? 0 : 1 + i % (n - 1); }))};
        run_scenario(s, 220 + static_cast<std::uint32_t>(n));
    }
}

TEST(ModelDistributed, AllPagesRemoteHomeHasNone) {
    for (int n : {2, 4}) {
        SCOPED_TRACE(testing::Message() << n << " instances");
        Scenario s;
        s.instances = n;
        s.sequences = {placed(0, owners([n](std::int32_t i) { return 1 + i % (n - 1); }))};
        run_scenario(s, 230 + static_cast<std::uint32_t>(n));
    }
}

// Two sequences with different homes, each serving the other's parts in the same step; one model object per
// instance.
TEST(ModelDistributed, TwoHomesServeEachOther) {
    for (int n : {2, 4}) {
        SCOPED_TRACE(testing::Message() << n << " instances");
        Scenario s;
        s.instances = n;
        s.model_per_instance = true;
        s.sequences = {placed(0, owners([n](std::int32_t i) { return i % n; })),
                       placed(1, owners([n](std::int32_t i) { return (i + 1) % n; }))};
        run_scenario(s, 240 + static_cast<std::uint32_t>(n));
    }
}

// Ranks 2 and 3 have no sequences of their own: they only serve (and store new tokens' K and V).
TEST(ModelDistributed, InstancesWithoutOwnSequencesServe) {
    Scenario s;
    s.instances = 4;
    s.sequences = {placed(0, owners([](std::int32_t i) { return i % 3 == 0 ? 0 : 1 + i % 3; })),
                   placed(1, owners([](std::int32_t i) { return 2 + i % 2; }))};
    run_scenario(s, 250);
}

TEST(ModelDistributed, Bf16PoolMatchesOneInstance) {
    for (int n : {2, 4}) {
        SCOPED_TRACE(testing::Message() << n << " instances");
        Scenario s;
        s.instances = n;
        s.dtype = INF_DTYPE_BF16;
        s.tolerance = 1e-3;  // same stored values; only the merge order differs
        s.sequences = {placed(0, owners([n](std::int32_t i) { return i % n; })),
                       placed(n - 1, owners([n](std::int32_t i) { return (i + 2) % n; }))};
        run_scenario(s, 260 + static_cast<std::uint32_t>(n));
    }
}

// Sparse steps (LServe) across instances, stage 1: streaming heads with the Λ mask (decode and prefill windows
// chosen per part as the home chooses them for its rows: a part of one row is a decode), retrieval heads dense.
// Windows that are not whole pages, so the mask itself (not only the page lists) decides which keys count.
namespace {

struct StreamingSparse {
    std::vector<std::int32_t> streaming{1, 0, 0, 1};  // [layers][kv_heads]: one streaming head per layer
    inf_sparse_step step{};
    explicit StreamingSparse(std::int32_t budget_tokens = 0) {
        step.size = sizeof step;
        step.streaming_heads = streaming.data();
        step.decode_sink_tokens = 5;
        step.decode_local_tokens = 20;
        step.prefill_sink_tokens = 3;
        step.prefill_local_tokens = 10;
        step.budget_tokens = budget_tokens;
    }
};

}  // namespace

TEST(ModelDistributedSparse, StreamingHeadsMatchOneInstance) {
    StreamingSparse sparse;
    for (int n : {2, 4}) {
        SCOPED_TRACE(testing::Message() << n << " instances, alternating pages");
        Scenario s;
        s.instances = n;
        s.sparse = &sparse.step;
        s.sequences = {placed(0, owners([n](std::int32_t i) { return i % n; }))};
        run_scenario(s, 270 + static_cast<std::uint32_t>(n));
    }
    for (int n : {2, 4}) {
        SCOPED_TRACE(testing::Message() << n << " instances, two homes serving each other");
        Scenario s;
        s.instances = n;
        s.sparse = &sparse.step;
        s.sequences = {placed(0, owners([n](std::int32_t i) { return i < 2 ? 1 + i % (n - 1) : 0; })),
                       placed(1, owners([n](std::int32_t i) { return (i + 1) % n; }))};
        run_scenario(s, 280 + static_cast<std::uint32_t>(n));
    }
}

// Every head streaming in one layer, none in the other; all pages remote (the home attends over nothing);
// default positions on the home where its pages are a prefix.
TEST(ModelDistributedSparse, AllStreamingAndAllRemote) {
    StreamingSparse sparse;
    sparse.streaming = {1, 1, 0, 0};
    sparse.step.streaming_heads = sparse.streaming.data();
    for (int n : {2, 4}) {
        SCOPED_TRACE(testing::Message() << n << " instances");
        Scenario all_remote;
        all_remote.instances = n;
        all_remote.sparse = &sparse.step;
        all_remote.sequences = {placed(0, owners([n](std::int32_t i) { return 1 + i % (n - 1); }))};
        run_scenario(all_remote, 290 + static_cast<std::uint32_t>(n));
        Scenario prefix;
        prefix.instances = n;
        prefix.sparse = &sparse.step;
        prefix.null_positions = true;
        prefix.sequences = {placed(0, owners([n](std::int32_t i) { return i < 2 ? 0 : 1 + i % (n - 1); }))};
        run_scenario(prefix, 295 + static_cast<std::uint32_t>(n));
    }
}

// A budget that covers every sequence (kv_length <= budget_tokens) selects nothing: the step runs.
TEST(ModelDistributedSparse, BudgetCoveringEverySequenceRuns) {
    StreamingSparse sparse(4 * kPage);
    Scenario s;
    s.instances = 2;
    s.sparse = &sparse.step;
    s.sequences = {placed(0, owners([](std::int32_t i) { return i % 2; }))};
    run_scenario(s, 299);
}

// Stage 2: retrieval heads with page selection every step (selection_store null). Decodes at kv_length 51..56
// (4 pages) keep 2 pages per list: the home's global top-k over every instance's scores must choose what one
// instance's selector chooses. Per KV head and per query head, with and without streaming heads, pages spread
// over 2 and 4 instances (alternating: every rank holds one of the 4 pages), two homes serving each other.
TEST(ModelDistributedSparse, PageSelectionMatchesOneInstance) {
    for (const std::int32_t per_query_head : {0, 1}) {
        for (const bool with_streaming : {false, true}) {
            StreamingSparse sparse(2 * kPage);
            sparse.step.per_query_head = per_query_head;
            if (!with_streaming) sparse.step.streaming_heads = nullptr;
            for (int n : {2, 4}) {
                SCOPED_TRACE(testing::Message() << n << " instances, per_query_head " << per_query_head << ", streaming "
                                                << with_streaming);
                Scenario s;
                s.instances = n;
                s.sparse = &sparse.step;
                s.logical_page_size = 8;
                s.sequences = {placed(0, owners([n](std::int32_t i) { return i % n; })),
                               placed(1, owners([n](std::int32_t i) { return (i + 3) % n; }))};
                run_scenario(s, 300 + static_cast<std::uint32_t>(n) + 10 * static_cast<std::uint32_t>(per_query_head));
                if (testing::Test::HasFailure()) return;
            }
        }
    }
}

// The home holds none of the pages, or all but the newest; one instance only serves.
TEST(ModelDistributedSparse, PageSelectionWithOneSidedPlacements) {
    StreamingSparse sparse(2 * kPage);
    Scenario s;
    s.instances = 3;
    s.sparse = &sparse.step;
    s.logical_page_size = 8;
    s.sequences = {placed(0, owners([](std::int32_t i) { return 1 + i % 2; })),
                   placed(1, owners([](std::int32_t i) { return i < 3 ? 1 : 2; }))};
    run_scenario(s, 330);
}

// A reusable selection (selection_store) is refused with several instances, on the home and on the server.
TEST(ModelDistributedSparse, ReusableSelectionIsRefused) {
    const auto device = make_device();
    const inf_model_config config = tiny_config();
    const RandomWeights weights(config, INF_TENSOR_TYPE_F32, 7);
    const auto model = make_model(device.get(), config, weights);
    Cluster cluster(device.get(), 2, pool_config(INF_DTYPE_F32, 2, 2, 16, kPage, 16, 8), 1000, 8);
    std::vector<DistSequence> sequences = {placed(0, owners([](std::int32_t i) { return i % 2; }))};
    sequences[0].tokens = random_tokens(kPrompt + 1, config.vocab_size, 9);
    StreamingSparse sparse(2 * kPage);
    std::vector<std::int32_t> store(64, 0);
    const std::int32_t slot = 0;
    const std::int32_t reselect = 1;
    sparse.step.selection_store = store.data();
    sparse.step.slot_ints = 64;
    sparse.step.selection_slots = &slot;
    sparse.step.reselect = &reselect;
    auto plans = cluster.plans(sequences, {{0, kPrompt, 1}}, 1);
    std::vector<float> logits(static_cast<std::size_t>(config.vocab_size), std::nanf(""));
    plans[0].plan.sparse = &sparse.step;
    EXPECT_ERROR(INF_STATUS_UNSUPPORTED, "reusable selection with several instances is not supported yet (decode sequence 0",
                 inf_model_step(model.get(), cluster.pool(0), &plans[0].plan, logits.data()));
    plans[1].plan.sparse = &sparse.step;
    EXPECT_ERROR(INF_STATUS_UNSUPPORTED, "reusable selection with several instances is not supported yet (served part 0",
                 inf_model_step(model.get(), cluster.pool(1), &plans[1].plan, nullptr));
    for (int r = 0; r < 2; ++r) {
        inf_comm_info info{};
        info.size = sizeof info;
        EXPECT_OK(inf_comm_get_info(cluster.comm(r), &info));
        EXPECT_EQ(info.messages_sent, 0U) << "a refused plan sends nothing";
    }
}

// Plans that disagree on who holds a page: the creditor scores a page at position 0, which the home holds too.
// The home fails PEER_FAILED naming both ranks and the position, and its abort reaches the creditor, which
// waits for the home's selection, at once (not after its timeout).
TEST(ModelDistributedSparse, ScoresOfAPageTheHomeHoldsArePeerFailed) {
    const auto device = make_device();
    const inf_model_config config = tiny_config();
    const RandomWeights weights(config, INF_TENSOR_TYPE_F32, 17);
    const auto model = make_model(device.get(), config, weights);
    Cluster cluster(device.get(), 2, pool_config(INF_DTYPE_F32, 2, 2, 16, kPage, 16, 8), kTimeoutMs, 18);
    std::vector<DistSequence> sequences = {placed(0, owners([](std::int32_t i) { return i % 2; }))};
    sequences[0].tokens = random_tokens(kPrompt + 1, config.vocab_size, 19);
    StreamingSparse sparse(2 * kPage);
    auto plans = cluster.plans(sequences, {{0, kPrompt, 1}}, 1);
    for (RankPlan& p : plans) p.plan.sparse = &sparse.step;
    ASSERT_EQ(plans[1].served_page_positions.size(), 2U);
    plans[1].served_page_positions[0] = 0;  // the home's page 0
    std::vector<std::vector<float>> got;
    std::vector<std::string> errors;
    const auto start = std::chrono::steady_clock::now();
    const auto statuses = cluster.run({model.get(), model.get()}, plans, got, config.vocab_size, &errors);
    EXPECT_EQ(statuses[0], INF_STATUS_PEER_FAILED);
    EXPECT_THAT(errors[0], testing::HasSubstr("both hold position 0 of sequence 0"));
    EXPECT_EQ(statuses[1], INF_STATUS_PEER_FAILED);
    EXPECT_THAT(errors[1], testing::HasSubstr("rank 0 aborted step 1"));
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(kTimeoutMs / 2));
}

namespace {

// Two instances, one sequence home on rank 0 with alternating pages, the first prefill chunk's plans.
struct BadPlans : testing::Test {
    void SetUp() override {
        device = make_device();
        model = make_model(device.get(), config, weights);
        cluster = std::make_unique<Cluster>(device.get(), 2, pool_config(INF_DTYPE_F32, 2, 2, 16, kPage, 16, 0), 1000, 5);
        sequences = {placed(0, owners([](std::int32_t i) { return i % 2; }))};
        sequences[0].tokens = random_tokens(kChunk, config.vocab_size, 6);
        plans = cluster->plans(sequences, {{0, 0, kChunk}}, 1);
    }
    void TearDown() override {
        for (int r = 0; r < 2; ++r) {
            inf_comm_info info{};
            info.size = sizeof info;
            EXPECT_OK(inf_comm_get_info(cluster->comm(r), &info));
            EXPECT_EQ(info.messages_sent, 0U) << "a plan that fails its checks sends nothing";
        }
    }
    // Runs rank r's plan alone (the checks fail before any message).
    inf_status step(int r) {
        RankPlan& p = plans[static_cast<std::size_t>(r)];
        logits.assign(p.token_ids.size() * static_cast<std::size_t>(config.vocab_size), std::nanf(""));
        return inf_model_step(model.get(), cluster->pool(r), &p.plan, logits.empty() ? nullptr : logits.data());
    }

    const inf_model_config config = tiny_config();
    const RandomWeights weights{config, INF_TENSOR_TYPE_F32, 4};
    inf_test::Device device;
    Model model;
    std::unique_ptr<Cluster> cluster;
    std::vector<DistSequence> sequences;
    std::vector<RankPlan> plans;
    std::vector<float> logits;
};

}  // namespace

TEST_F(BadPlans, HomeSideFieldsAreNamed) {
    RankPlan& home = plans[0];
    ASSERT_EQ(home.remote_ranks, std::vector<std::int32_t>{1});
    ASSERT_EQ(home.remote_sends_kv, std::vector<std::int32_t>{1});
    home.remote_ranks[0] = 0;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "plan->exchange->remote_ranks[0] (0) is this instance's own rank", step(0));
    home.remote_ranks[0] = 2;
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "plan->exchange->remote_ranks[0] (2) is not a rank of the group", step(0));
    home.remote_ranks[0] = 1;
    home.remote_sequences[0] = 1;
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "plan->exchange->remote_sequences[0] (1) is not a sequence", step(0));
    home.remote_sequences[0] = 0;
    home.remote_sends_kv[0] = 0;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "sequence 0 covers position 16 (token 16) and no remote part", step(0));
    home.remote_sends_kv[0] = 1;
    home.page_positions[0] = 8;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "plan->page_positions[0] (8) must be a multiple of the page size", step(0));
    home.page_positions[0] = 0;
    home.ex.remote_ranks = nullptr;
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "plan->exchange->remote_ranks is null", step(0));
    home.ex.remote_ranks = home.remote_ranks.data();
    home.ex.remote_parts = -1;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "plan->exchange->remote_parts (-1) must be >= 0", step(0));
    home.ex.remote_parts = 1;
    home.ex.remote_sends_kv = nullptr;  // null: no part sends K and V, so position 16 has no home
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "covers position 16 (token 16) and no remote part", step(0));
    home.ex.remote_sends_kv = home.remote_sends_kv.data();
    home.ex.comm = nullptr;
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "plan->exchange->comm", step(0));
    home.ex.comm = cluster->comm(0);
    home.ex.size = 4;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "plan->exchange->size (4)", step(0));
    home.ex.size = sizeof home.ex;
    inf_sparse_step sparse{};
    sparse.size = sizeof sparse;
    sparse.per_query_head = 2;
    home.plan.sparse = &sparse;  // a distributed step checks its sparse fields too
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "plan->sparse->per_query_head (2)", step(0));
    home.plan.sparse = nullptr;
    // Without an exchange, a token no entry covers is refused as well.
    home.plan.exchange = nullptr;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "no entry of the page table of sequence 0 covers position 16", step(0));
}

TEST_F(BadPlans, ServingSideFieldsAreNamed) {
    RankPlan& server = plans[1];
    ASSERT_EQ(server.served_ranks, std::vector<std::int32_t>{0});
    ASSERT_EQ(server.served_page_ids.size(), 1U);
    const std::int32_t page = server.served_page_ids[0];
    server.served_ranks[0] = 1;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "plan->exchange->served_ranks[0] (1) is this instance's own rank", step(1));
    server.served_ranks[0] = 0;
    server.served_page_ids[0] = 999;
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "plan->exchange->served_page_ids[0] (999) is out of range", step(1));
    server.served_page_ids[0] = page;
    server.served_page_positions[0] = 3;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "plan->exchange->served_page_positions[0] (3) must be a multiple", step(1));
    server.served_page_positions[0] = kPage;
    server.served_positions[1] = 5;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "plan->exchange->served_positions[1] (5) does not follow", step(1));
    server.served_positions[1] = 1;
    server.served_kv_lengths[0] = 21;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "plan->exchange->served_kv_lengths[0] (21)", step(1));
    server.served_kv_lengths[0] = kChunk;
    server.served_append_pages[16] = -1;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "plan->exchange->served_append_pages[16] (-1) must be " + std::to_string(page),
                 step(1));
    server.served_append_pages[16] = page;
    server.served_append_pages[0] = page;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "plan->exchange->served_append_pages[0] (" + std::to_string(page) + ") must be -1",
                 step(1));
    server.served_append_pages[0] = -1;
    server.served_receives_kv[0] = 0;
    server.ex.served_append_pages = nullptr;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "plan->exchange->served_receives_kv[0] is 0", step(1));
    server.served_receives_kv[0] = 1;
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "plan->exchange->served_append_pages is null", step(1));
    server.ex.served_append_pages = server.served_append_pages.data();
    server.served_q_starts[1] = 0;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "part 0 has no query row", step(1));
    server.served_q_starts[1] = kChunk;
    server.ex.served_parts = -2;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "plan->exchange->served_parts (-2) must be >= 0", step(1));
}

namespace {

// Two instances, alternating pages, home on rank 0, a model for both.
struct Pair {
    inf_model_config config = tiny_config();
    RandomWeights weights{config, INF_TENSOR_TYPE_F32, 300};
    inf_test::Device device = make_device();
    Model model = make_model(device.get(), config, weights);
    Cluster cluster;
    std::vector<DistSequence> sequences{placed(0, owners([](std::int32_t i) { return i % 2; }))};

    explicit Pair(std::int32_t timeout_ms)
        : cluster(device.get(), 2, pool_config(INF_DTYPE_F32, 2, 2, 16, kPage, 16, 0), timeout_ms, 301) {
        sequences[0].tokens = random_tokens(kPrompt, config.vocab_size, 302);
    }
    std::vector<inf_model*> models() { return {model.get(), model.get()}; }
};

}  // namespace

TEST(ModelDistributedFailure, PeerDestroyedMidStepIsPeerFailedNamingTheRank) {
    Pair pair(10000);
    auto plans = pair.cluster.plans(pair.sequences, {{0, 0, kChunk}}, 1);
    std::vector<std::vector<float>> logits;
    std::vector<std::string> errors;
    const auto start = std::chrono::steady_clock::now();
    std::thread killer([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        pair.cluster.destroy_comm(1);  // rank 1 never steps: rank 0 is waiting for its reply
    });
    const std::vector<bool> only_home{true, false};
    const auto statuses = pair.cluster.run(pair.models(), plans, logits, pair.config.vocab_size, &errors, &only_home);
    killer.join();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(statuses[0], INF_STATUS_PEER_FAILED) << errors[0];
    EXPECT_NE(errors[0].find("rank 1"), std::string::npos) << errors[0];
    EXPECT_LT(seconds, 5.0) << "a lost peer must not wait for the timeout";
}

TEST(ModelDistributedFailure, SilentPeerIsTimeoutNamingTheRank) {
    Pair pair(200);
    auto plans = pair.cluster.plans(pair.sequences, {{0, 0, kChunk}}, 1);
    std::vector<std::vector<float>> logits;
    std::vector<std::string> errors;
    const std::vector<bool> only_home{true, false};
    const auto statuses = pair.cluster.run(pair.models(), plans, logits, pair.config.vocab_size, &errors, &only_home);
    EXPECT_EQ(statuses[0], INF_STATUS_TIMEOUT) << errors[0];
    EXPECT_NE(errors[0].find("rank 1"), std::string::npos) << errors[0];
}

// Step 2 aborts (rank 1's plan fails its checks, rank 0 times out after sending its layer-0 queries); the
// re-run as step 3 drops those queries on rank 1 and gives the logits of one instance.
TEST(ModelDistributedFailure, StaleMessagesOfAnAbortedStepAreDropped) {
    Pair pair(10000);
    SingleInstance single(pair.device.get(), pool_config(INF_DTYPE_F32, 2, 2, 16, kPage, 16, 0), 303);
    const std::int32_t vocab = pair.config.vocab_size;
    std::vector<std::vector<float>> got, expected;
    const std::vector<DistFeed> first{{0, 0, kChunk}}, second{{0, kChunk, kChunk}};

    auto plans = pair.cluster.plans(pair.sequences, first, 1);
    auto statuses = pair.cluster.run(pair.models(), plans, got, vocab);
    ASSERT_EQ(statuses, (std::vector<inf_status>{INF_STATUS_OK, INF_STATUS_OK}));
    ASSERT_OK(single.run(pair.model.get(), pair.sequences, first, expected, vocab));
    EXPECT_LT(relative_error(got[0], expected[0]), 1e-5);

    EXPECT_OK(inf_comm_set_timeout(pair.cluster.comm(0), 300));
    plans = pair.cluster.plans(pair.sequences, second, 2);
    plans[1].served_kv_lengths[0] += 1;  // rank 1 refuses its plan: sends nothing
    std::vector<std::string> errors;
    statuses = pair.cluster.run(pair.models(), plans, got, vocab, &errors);
    EXPECT_EQ(statuses[0], INF_STATUS_TIMEOUT) << errors[0];
    EXPECT_EQ(statuses[1], INF_STATUS_INVALID_ARGUMENT) << errors[1];

    EXPECT_OK(inf_comm_set_timeout(pair.cluster.comm(0), 10000));
    plans = pair.cluster.plans(pair.sequences, second, 3);
    statuses = pair.cluster.run(pair.models(), plans, got, vocab, &errors);
    EXPECT_EQ(statuses[0], INF_STATUS_OK) << errors[0];
    EXPECT_EQ(statuses[1], INF_STATUS_OK) << errors[1];
    ASSERT_OK(single.run(pair.model.get(), pair.sequences, second, expected, vocab));
    EXPECT_LT(relative_error(got[0], expected[0]), 1e-5);
}

// A peer that runs another step_id than this instance is refused as PEER_FAILED naming it (not dropped).
TEST(ModelDistributedFailure, NewerStepIdIsPeerFailed) {
    Pair pair(500);
    auto plans = pair.cluster.plans(pair.sequences, {{0, 0, kChunk}}, 7);
    plans[0].bind(pair.cluster.comm(0), 8);
    std::vector<std::vector<float>> got;
    std::vector<std::string> errors;
    const auto statuses = pair.cluster.run(pair.models(), plans, got, pair.config.vocab_size, &errors);
    EXPECT_EQ(statuses[1], INF_STATUS_PEER_FAILED) << errors[1];
    EXPECT_NE(errors[1].find("rank 0 sent a query of step_id 8 while this instance runs step_id 7"), std::string::npos)
        << errors[1];
    EXPECT_NE(statuses[0], INF_STATUS_OK);
}

// Plans that pass their own checks but disagree across instances: the server names the home and the field.
TEST(ModelDistributedFailure, DisagreeingPlansArePeerFailedNamingTheField) {
    Pair pair(500);
    auto plans = pair.cluster.plans(pair.sequences, {{0, 0, kChunk}}, 1);
    RankPlan& server = plans[1];  // it believes the part starts at position 1 (19 rows)
    server.served_positions.erase(server.served_positions.begin());
    server.served_append_pages.erase(server.served_append_pages.begin());
    server.served_q_starts[1] = kChunk - 1;
    server.bind(pair.cluster.comm(1), 1);
    std::vector<std::vector<float>> got;
    std::vector<std::string> errors;
    const auto statuses = pair.cluster.run(pair.models(), plans, got, pair.config.vocab_size, &errors);
    EXPECT_EQ(statuses[1], INF_STATUS_PEER_FAILED) << errors[1];
    EXPECT_NE(errors[1].find("part 0 of the query from rank 0 has rows 20 but this instance's plan says 19"), std::string::npos)
        << errors[1];
    // Rank 1 aborts the step, so rank 0 learns why at once (not by its timeout), and no one reads as lost.
    EXPECT_EQ(statuses[0], INF_STATUS_PEER_FAILED) << errors[0];
    EXPECT_NE(errors[0].find("rank 1 aborted step 1: step exchange (step_id 1, layer 0): part 0 of the query from rank 0"),
              std::string::npos)
        << errors[0];
    EXPECT_EQ(errors[0].find("peer"), std::string::npos) << errors[0];
}

// page_positions on one instance (no exchange): explicit default positions give the logits of the plain
// table; with sparse they must be the default ones; they must ascend.
TEST(ModelPagePositions, GivenPositionsMatchThePlainTable) {
    const auto device = make_device();
    const inf_model_config config = tiny_config();
    const RandomWeights weights(config, INF_TENSOR_TYPE_F32, 400);
    const auto model = make_model(device.get(), config, weights);
    const auto tokens = random_tokens(40, config.vocab_size, 401);
    const std::vector<std::int32_t> pages{5, 2, 7};
    const auto plain_pool = inf_test::make_pool(device.get(), pool_config(INF_DTYPE_F32, 2, 2, 16, kPage, 8, 0));
    const auto plain = run_chunked(model.get(), plain_pool.get(), tokens, 40, pages, kPage, config.vocab_size);

    const auto pool = inf_test::make_pool(device.get(), pool_config(INF_DTYPE_F32, 2, 2, 16, kPage, 8, 0));
    std::vector<std::int32_t> positions(40), logit_tokens(40);
    for (std::int32_t i = 0; i < 40; ++i) positions[static_cast<std::size_t>(i)] = logit_tokens[static_cast<std::size_t>(i)] = i;
    const std::int32_t q_starts[2] = {0, 40};
    const std::int32_t kv_length = 40;
    const std::int32_t page_starts[2] = {0, 3};
    const std::int32_t page_positions[3] = {0, kPage, 2 * kPage};
    inf_step_plan plan{};
    plan.size = sizeof plan;
    plan.sequences = 1;
    plan.tokens = 40;
    plan.logit_rows = 40;
    plan.token_ids = tokens.data();
    plan.positions = positions.data();
    plan.q_starts = q_starts;
    plan.kv_lengths = &kv_length;
    plan.page_starts = page_starts;
    plan.page_ids = pages.data();
    plan.logit_tokens = logit_tokens.data();
    plan.page_positions = page_positions;
    std::vector<float> logits(40 * static_cast<std::size_t>(config.vocab_size), std::nanf(""));
    ASSERT_OK(inf_model_step(model.get(), pool.get(), &plan, logits.data()));
    EXPECT_LT(relative_error(logits, plain), 1e-6);

    // Sparse steps take page_positions only when they are the default ones.
    inf_sparse_step sparse{};
    sparse.size = sizeof sparse;
    plan.sparse = &sparse;
    std::fill(logits.begin(), logits.end(), std::nanf(""));
    const auto sparse_pool = inf_test::make_pool(device.get(), pool_config(INF_DTYPE_F32, 2, 2, 16, kPage, 8, 0));
    ASSERT_OK(inf_model_step(model.get(), sparse_pool.get(), &plan, logits.data()));
    EXPECT_LT(relative_error(logits, plain), 1e-6);
    const std::int32_t four_pages[4] = {5, 2, 7, 1};
    const std::int32_t four_starts[2] = {0, 4};
    const std::int32_t shifted[4] = {0, kPage, 2 * kPage, 4 * kPage};  // covers the tokens, not the default
    plan.page_ids = four_pages;
    plan.page_starts = four_starts;
    plan.page_positions = shifted;
    EXPECT_ERROR(INF_STATUS_UNSUPPORTED, "plan->sparse with plan->page_positions other than the default",
                 inf_model_step(model.get(), sparse_pool.get(), &plan, logits.data()));
    // Positions must ascend within a sequence.
    const std::int32_t unordered[3] = {kPage, 0, 2 * kPage};
    plan.sparse = nullptr;
    plan.page_ids = pages.data();
    plan.page_starts = page_starts;
    plan.page_positions = unordered;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "plan->page_positions[1] (0) must be greater than plan->page_positions[0]",
                 inf_model_step(model.get(), pool.get(), &plan, logits.data()));
}
