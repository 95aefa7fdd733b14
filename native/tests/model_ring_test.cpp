// Streaming heads stored as a ring of pages (inf_streaming_ring): a sparse step whose streaming heads live in
// per-sequence rings gives the logits of the same step with every head in one paged pool, over contexts that
// wrap each ring many times; bad rings and pools are refused with messages that name them.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "model_fixture.h"

using namespace model_test;
using inf_test::make_device;
using inf_test::make_pool;
using inf_test::Pool;
using inf_test::pool_config;

namespace {

// GQA (2 query heads per KV head), 4 layers: room for a layer without streaming heads, one with only
// streaming heads and two mixed ones.
inf_model_config ring_config() {
    inf_model_config c = tiny_config();
    c.layers = 4;
    c.q_heads = 8;
    c.kv_heads = 4;
    c.head_dim = 16;
    c.dim = 128;
    c.ffn_dim = 96;
    return c;
}

// [layers][kv_heads]: none streaming, all streaming, two mixed.
const std::vector<std::int32_t> kRoles = {0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 1, 0, 0, 1, 1, 0};

std::vector<std::int32_t> heads_per_layer(const inf_model_config& c, bool streaming) {
    std::vector<std::int32_t> out(static_cast<std::size_t>(c.layers), 0);
    for (std::int32_t l = 0; l < c.layers; ++l) {
        for (std::int32_t h = 0; h < c.kv_heads; ++h) {
            out[static_cast<std::size_t>(l)] += (kRoles[static_cast<std::size_t>(l * c.kv_heads + h)] != 0) == streaming ? 1 : 0;
        }
    }
    return out;
}

struct Variant {
    inf_dtype dtype;
    std::int32_t page_size;
    std::int32_t budget_tokens;  // 0: no page selection
    std::int32_t per_query_head;
    bool reuse;  // a selection store, reselected every 4th decode
};

// Windows: sink 16 (decode and prefill), local 32 (decode) and 24 (prefill).
inf_sparse_step windows() {
    inf_sparse_step s{};
    s.size = sizeof s;
    s.streaming_heads = kRoles.data();
    s.decode_sink_tokens = 16;
    s.decode_local_tokens = 32;
    s.prefill_sink_tokens = 16;
    s.prefill_local_tokens = 24;
    return s;
}

// Pages of one ring: sink + the window of the widest step (a prefill chunk of `chunk` tokens).
std::int32_t ring_pages(std::int32_t page_size, std::int32_t chunk) {
    const std::int32_t sink = (16 + page_size - 1) / page_size;
    const std::int32_t window = std::max(32, 24 + chunk - 1);
    return sink + (window - 1 + page_size - 1) / page_size + 1;
}

// Two sequences, A from step 0 and B from step 3, each prefilled in chunks then decoded, mixed in one step.
struct Schedule {
    std::vector<std::int32_t> tokens[2];
    std::int32_t prefill[2] = {150, 90};
    std::int32_t chunk[2] = {19, 13};
    std::int32_t start[2] = {0, 3};
};

struct Plan {
    std::vector<std::int32_t> token_ids, positions, q_starts{0}, kv_lengths, page_starts{0}, page_ids, logit_tokens,
        ring_starts{0}, ring_pages;
    inf_step_plan plan{};
};

// Runs the schedule; ring_pool null: the paged run. Returns the logits of every step, concatenated.
std::vector<float> run(inf_model* model, inf_page_pool* pool, inf_page_pool* ring_pool, const Schedule& schedule,
                       const Variant& variant, std::int32_t vocab, std::int32_t ring_size, const inf_model_config& c) {
    std::int32_t done[2] = {0, 0};
    const std::int32_t length[2] = {static_cast<std::int32_t>(schedule.tokens[0].size()),
                                    static_cast<std::int32_t>(schedule.tokens[1].size())};
    const std::int32_t table = (length[0] + variant.page_size - 1) / variant.page_size;
    std::vector<float> all;
    const std::int32_t budget_pages = std::max(1, variant.budget_tokens / variant.page_size);
    const std::int32_t lists = variant.per_query_head != 0 ? c.q_heads : c.kv_heads;
    const std::int64_t slot_ints = std::int64_t{c.layers} * lists * (1 + budget_pages);
    std::vector<std::int32_t> store(static_cast<std::size_t>(2 * slot_ints), -1);
    std::int32_t decodes[2] = {0, 0};
    for (std::int32_t step = 0; done[0] < length[0] || done[1] < length[1]; ++step) {
        Plan p;
        std::vector<std::int32_t> slots, reselect;
        for (std::int32_t s = 0; s < 2; ++s) {
            if (step < schedule.start[s] || done[s] >= length[s]) {
                continue;
            }
            const std::int32_t n = done[s] < schedule.prefill[s] ? std::min(schedule.chunk[s], schedule.prefill[s] - done[s]) : 1;
            for (std::int32_t i = 0; i < n; ++i) {
                p.logit_tokens.push_back(static_cast<std::int32_t>(p.token_ids.size()));
                p.token_ids.push_back(schedule.tokens[s][static_cast<std::size_t>(done[s] + i)]);
                p.positions.push_back(done[s] + i);
            }
            done[s] += n;
            p.q_starts.push_back(static_cast<std::int32_t>(p.token_ids.size()));
            p.kv_lengths.push_back(done[s]);
            // Page tables: A owns pages 0 .. table-1, B the next ones; entry j of B is a page from the top.
            for (std::int32_t j = 0; j * variant.page_size < done[s]; ++j) {
                p.page_ids.push_back(s == 0 ? j : 2 * table - 1 - j);
            }
            p.page_starts.push_back(static_cast<std::int32_t>(p.page_ids.size()));
            for (std::int32_t j = 0; j < ring_size; ++j) {
                p.ring_pages.push_back(s == 0 ? j : 2 * ring_size - 1 - j);
            }
            p.ring_starts.push_back(static_cast<std::int32_t>(p.ring_pages.size()));
            slots.push_back(s);
            // A selecting decode recomputes its selection at its 1st, 5th, 9th, ... selecting step (LServe's R = 4).
            const bool selects = n == 1 && done[s] > variant.budget_tokens;
            reselect.push_back(selects && decodes[s]++ % 4 != 0 ? 0 : 1);
        }
        inf_sparse_step sparse = windows();
        sparse.budget_tokens = variant.budget_tokens;
        sparse.per_query_head = variant.per_query_head;
        if (variant.reuse) {
            sparse.selection_store = store.data();
            sparse.slot_ints = slot_ints;
            sparse.selection_slots = slots.data();
            sparse.reselect = reselect.data();
        }
        inf_streaming_ring ring{};
        ring.size = sizeof ring;
        ring.pool = ring_pool;
        ring.ring_starts = p.ring_starts.data();
        ring.ring_pages = p.ring_pages.data();
        sparse.ring = ring_pool != nullptr ? &ring : nullptr;
        inf_step_plan& plan = p.plan;
        plan.size = sizeof plan;
        plan.sequences = static_cast<std::int32_t>(p.kv_lengths.size());
        plan.tokens = static_cast<std::int32_t>(p.token_ids.size());
        plan.logit_rows = plan.tokens;
        plan.token_ids = p.token_ids.data();
        plan.positions = p.positions.data();
        plan.q_starts = p.q_starts.data();
        plan.kv_lengths = p.kv_lengths.data();
        plan.page_starts = p.page_starts.data();
        plan.page_ids = p.page_ids.data();
        plan.logit_tokens = p.logit_tokens.data();
        plan.sparse = &sparse;
        std::vector<float> logits(static_cast<std::size_t>(plan.tokens) * static_cast<std::size_t>(vocab),
                                  std::numeric_limits<float>::quiet_NaN());
        const inf_status status = inf_model_step(model, pool, &plan, logits.data());
        EXPECT_EQ(status, INF_STATUS_OK) << "step " << step << ": " << inf_last_error();
        all.insert(all.end(), logits.begin(), logits.end());
    }
    return all;
}

void ring_equals_paged(const Variant& variant, double tolerance, std::uint32_t seed) {
    const auto device = make_device();
    const inf_model_config c = ring_config();
    const RandomWeights weights(c, INF_TENSOR_TYPE_F32, seed);
    const auto model = make_model(device.get(), c, weights);
    const std::int32_t ring_size = ring_pages(variant.page_size, 19);
    // Each ring wraps at least 5 times: A runs 5 rings' worth of tokens past its prefill, B 3.
    const std::int32_t length = 150 + 5 * ring_size * variant.page_size;
    Schedule schedule;
    schedule.tokens[0] = random_tokens(static_cast<std::size_t>(length), c.vocab_size, seed + 1);
    schedule.tokens[1] = random_tokens(static_cast<std::size_t>(90 + 3 * ring_size * variant.page_size), c.vocab_size, seed + 2);
    const std::int32_t table = (length + variant.page_size - 1) / variant.page_size;
    const std::int32_t logical = variant.page_size / 2;

    const Pool paged = make_pool(device.get(), pool_config(variant.dtype, c.layers, c.kv_heads, c.head_dim,
                                                           variant.page_size, 2 * table, logical));
    const std::vector<std::int32_t> retrieval = heads_per_layer(c, false);
    const std::vector<std::int32_t> streaming = heads_per_layer(c, true);
    inf_page_pool_config main_config = pool_config(variant.dtype, c.layers, c.kv_heads, c.head_dim, variant.page_size,
                                                   2 * table, logical);
    main_config.layer_kv_heads = retrieval.data();
    const Pool main = make_pool(device.get(), main_config);
    inf_page_pool_config ring_config_ = pool_config(variant.dtype, c.layers, c.kv_heads, c.head_dim, variant.page_size,
                                                    2 * ring_size, 0);
    ring_config_.layer_kv_heads = streaming.data();
    const Pool ring = make_pool(device.get(), ring_config_);

    const auto expected = run(model.get(), paged.get(), nullptr, schedule, variant, c.vocab_size, ring_size, c);
    const auto actual = run(model.get(), main.get(), ring.get(), schedule, variant, c.vocab_size, ring_size, c);
    ASSERT_EQ(actual.size(), expected.size());
    EXPECT_LT(relative_error(actual, expected), tolerance);
    // Per step and token the same too (a large error in one row would hide in the maximum of all rows only
    // when rows differ in scale): compare the last rows, decoded far past every ring's wrap.
    const std::size_t tail = static_cast<std::size_t>(c.vocab_size) * 50;
    EXPECT_LT(relative_error(std::vector<float>(actual.end() - static_cast<std::ptrdiff_t>(tail), actual.end()),
                             std::vector<float>(expected.end() - static_cast<std::ptrdiff_t>(tail), expected.end())),
              tolerance);

    // The two pools hold less than the paged pool: the ring's bytes are fixed by the windows, not the context.
    std::uint64_t paged_bytes = 0, main_bytes = 0, ring_bytes = 0;
    EXPECT_OK(inf_page_pool_bytes(paged.get(), &paged_bytes));
    EXPECT_OK(inf_page_pool_bytes(main.get(), &main_bytes));
    EXPECT_OK(inf_page_pool_bytes(ring.get(), &ring_bytes));
    EXPECT_LT(main_bytes + ring_bytes, paged_bytes);
}

}  // namespace

TEST(ModelRing, EqualsPagedF32Page16Dense) { ring_equals_paged({INF_DTYPE_F32, 16, 0, 0, false}, 1e-5, 301); }

TEST(ModelRing, EqualsPagedF32Page16Selection) { ring_equals_paged({INF_DTYPE_F32, 16, 64, 0, false}, 1e-5, 311); }

TEST(ModelRing, EqualsPagedF32Page64Dense) { ring_equals_paged({INF_DTYPE_F32, 64, 0, 0, false}, 1e-5, 321); }

TEST(ModelRing, EqualsPagedF32Page64SelectionPerQueryHeadReused) {
    ring_equals_paged({INF_DTYPE_F32, 64, 128, 1, true}, 1e-5, 331);
}

TEST(ModelRing, EqualsPagedBf16Page16Selection) { ring_equals_paged({INF_DTYPE_BF16, 16, 64, 0, true}, 1e-3, 341); }

// The ring's page count does not depend on the context: a ring sized for the windows serves any length.
TEST(ModelRing, RingPagesDoNotGrowWithContext) {
    EXPECT_EQ(ring_pages(16, 19), 1 + 3 + 1);  // sink 16 = 1 page; window max(32, 24 + 18) = 42 -> 4 pages
    EXPECT_EQ(ring_pages(64, 19), 1 + 2);      // window 42 in pages of 64 -> 2 pages (misaligned)
}

namespace {

// A one-sequence prefill of `tokens` tokens through a ring, for the refusal tests.
struct RingFixture {
    Pool main, ring, full;
    std::vector<std::int32_t> retrieval, streaming;
    std::vector<std::int32_t> token_ids, positions, q_starts, kv_lengths, page_starts, page_ids, logit_tokens,
        ring_starts, ring_page_ids;
    inf_streaming_ring ring_desc{};
    inf_sparse_step sparse{};
    inf_step_plan plan{};
    std::vector<float> logits;

    RingFixture(inf_device* device, const inf_model_config& c, std::int32_t tokens, std::int32_t ring_size) {
        retrieval = heads_per_layer(c, false);
        streaming = heads_per_layer(c, true);
        inf_page_pool_config m = pool_config(INF_DTYPE_F32, c.layers, c.kv_heads, c.head_dim, 16, 8, 8);
        m.layer_kv_heads = retrieval.data();
        main = make_pool(device, m);
        inf_page_pool_config r = pool_config(INF_DTYPE_F32, c.layers, c.kv_heads, c.head_dim, 16, 8, 0);
        r.layer_kv_heads = streaming.data();
        ring = make_pool(device, r);
        full = make_pool(device, pool_config(INF_DTYPE_F32, c.layers, c.kv_heads, c.head_dim, 16, 8, 8));
        for (std::int32_t i = 0; i < tokens; ++i) {
            token_ids.push_back(i % c.vocab_size);
            positions.push_back(i);
        }
        q_starts = {0, tokens};
        kv_lengths = {tokens};
        page_starts = {0, (tokens + 15) / 16};
        page_ids.resize(static_cast<std::size_t>(page_starts[1]));
        std::iota(page_ids.begin(), page_ids.end(), 0);
        logit_tokens = {tokens - 1};
        ring_starts = {0, ring_size};
        ring_page_ids.resize(static_cast<std::size_t>(ring_size));
        std::iota(ring_page_ids.begin(), ring_page_ids.end(), 0);
        ring_desc.size = sizeof ring_desc;
        ring_desc.pool = ring.get();
        ring_desc.ring_starts = ring_starts.data();
        ring_desc.ring_pages = ring_page_ids.data();
        sparse = windows();
        sparse.ring = &ring_desc;
        plan.size = sizeof plan;
        plan.sequences = 1;
        plan.tokens = tokens;
        plan.logit_rows = 1;
        plan.token_ids = token_ids.data();
        plan.positions = positions.data();
        plan.q_starts = q_starts.data();
        plan.kv_lengths = kv_lengths.data();
        plan.page_starts = page_starts.data();
        plan.page_ids = page_ids.data();
        plan.logit_tokens = logit_tokens.data();
        plan.sparse = &sparse;
        logits.assign(static_cast<std::size_t>(c.vocab_size), std::numeric_limits<float>::quiet_NaN());
    }
};

}  // namespace

TEST(ModelRing, RefusesBadRingsAndPools) {
    const auto device = make_device();
    const inf_model_config c = ring_config();
    const RandomWeights weights(c, INF_TENSOR_TYPE_F32, 351);
    const auto model = make_model(device.get(), c, weights);
    {
        // A chunk of 20 with prefill local 24 needs ceil(42 / 16) + 1 = 4 local pages + 1 sink page.
        RingFixture f(device.get(), c, 20, 4);
        EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT,
                     "plan->sparse->ring: the ring of sequence 0 has 4 pages of 16 tokens but this step needs 5",
                     inf_model_step(model.get(), f.main.get(), &f.plan, f.logits.data()));
        f.ring_starts[1] = 5;
        f.ring_page_ids.push_back(4);
        f.ring_desc.ring_pages = f.ring_page_ids.data();
        EXPECT_OK(inf_model_step(model.get(), f.main.get(), &f.plan, f.logits.data()));
        EXPECT_TRUE(std::all_of(f.logits.begin(), f.logits.end(), [](float x) { return std::isfinite(x); }));
    }
    {
        RingFixture f(device.get(), c, 20, 5);
        f.ring_page_ids[3] = f.ring_page_ids[1];
        EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "plan->sparse->ring->ring_pages[3] (1) repeats plan->sparse->ring->ring_pages[1]",
                     inf_model_step(model.get(), f.main.get(), &f.plan, f.logits.data()));
        f.ring_page_ids[3] = 8;
        EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "plan->sparse->ring->ring_pages[3] (8) is out of range",
                     inf_model_step(model.get(), f.main.get(), &f.plan, f.logits.data()));
    }
    {
        // Roles that disagree with the pools' head counts: layer 2 marked all streaming.
        RingFixture f(device.get(), c, 20, 5);
        std::vector<std::int32_t> roles = kRoles;
        roles[2 * 4 + 1] = 1;
        roles[2 * 4 + 3] = 1;
        f.sparse.streaming_heads = roles.data();
        EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT,
                     "pool: config->layer_kv_heads[2] (2) must equal the retrieval heads of layer 2 (0",
                     inf_model_step(model.get(), f.main.get(), &f.plan, f.logits.data()));
        // The ring pool's counts are checked too (here against the step's full pool as the ring).
        f.sparse.streaming_heads = kRoles.data();
        f.ring_desc.pool = f.full.get();
        EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT,
                     "plan->sparse->ring->pool: config->layer_kv_heads[0] (4) must equal the streaming heads of layer 0 (0",
                     inf_model_step(model.get(), f.main.get(), &f.plan, f.logits.data()));
        // A pool of retrieval heads without a ring, and a full pool with a ring.
        f.ring_desc.pool = f.ring.get();
        EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "pool: config->layer_kv_heads[1] (4) must equal the retrieval heads of layer 1 (0",
                     inf_model_step(model.get(), f.full.get(), &f.plan, f.logits.data()));
        f.sparse.ring = nullptr;
        EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "pool stores fewer than kv_heads (4) heads in some layer",
                     inf_model_step(model.get(), f.main.get(), &f.plan, f.logits.data()));
    }
    {
        // A distributed step cannot keep a ring.
        RingFixture f(device.get(), c, 20, 5);
        inf_comm_group* group = nullptr;
        ASSERT_OK(inf_comm_group_create(1, &group));
        inf_comm* comm = nullptr;
        ASSERT_OK(inf_comm_create_inproc(group, 0, &comm));
        inf_step_exchange exchange{};
        exchange.size = sizeof exchange;
        exchange.comm = comm;
        exchange.step_id = 1;
        f.plan.exchange = &exchange;
        EXPECT_ERROR(INF_STATUS_UNSUPPORTED, "plan->sparse->ring with plan->exchange",
                     inf_model_step(model.get(), f.main.get(), &f.plan, f.logits.data()));
        EXPECT_OK(inf_comm_destroy(comm));
        EXPECT_OK(inf_comm_group_destroy(group));
    }
}
