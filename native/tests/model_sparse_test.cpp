// Sparse steps (LServe): Λ-masked streaming heads, page selection for retrieval heads, selection reuse.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "model_fixture.h"

using namespace model_test;
using inf_test::make_device;
using inf_test::make_pool;
using inf_test::pool_config;

namespace {

std::vector<std::int32_t> identity_pages(std::int32_t count) {
    std::vector<std::int32_t> pages(static_cast<std::size_t>(count));
    std::iota(pages.begin(), pages.end(), 0);
    std::reverse(pages.begin(), pages.end());  // not the identity mapping: entry j is page count-1-j
    return pages;
}

inf_sparse_step sparse_step() {
    inf_sparse_step s{};
    s.size = sizeof s;
    return s;
}

std::vector<double> last_row(const std::vector<double>& logits, std::int32_t vocab) {
    return std::vector<double>(logits.end() - vocab, logits.end());
}

}  // namespace

TEST(ModelSparse, BudgetCoveringTheContextEqualsDense) {
    const auto device = make_device();
    const inf_model_config config = tiny_config();
    const RandomWeights weights(config, INF_TENSOR_TYPE_F32, 101);
    const auto model = make_model(device.get(), config, weights);
    const auto tokens = random_tokens(45, config.vocab_size, 102);
    const auto pages = identity_pages(4);
    const auto dense_pool = make_pool(device.get(), pool_config(INF_DTYPE_F32, 2, 2, 16, 16, 4, 8));
    const auto sparse_pool = make_pool(device.get(), pool_config(INF_DTYPE_F32, 2, 2, 16, 16, 4, 8));
    inf_sparse_step sparse = sparse_step();
    sparse.budget_tokens = 64;
    const auto dense = run_chunked(model.get(), dense_pool.get(), tokens, 10, pages, 16, config.vocab_size);
    const auto sparse_logits = run_chunked(model.get(), sparse_pool.get(), tokens, 10, pages, 16, config.vocab_size, &sparse);
    EXPECT_LT(relative_error(sparse_logits, dense), 1e-6);
}

// An int8 pool under sparse steps: a budget covering the context equals the int8 dense run; a small budget
// with streaming heads and selection (the selector reads the summaries of the dequantised keys) runs,
// stores full selections for the retrieval heads and gives finite logits.
TEST(ModelSparse, Int8PoolRunsSparseSteps) {
    const auto device = make_device();
    const inf_model_config config = tiny_config();
    const RandomWeights weights(config, INF_TENSOR_TYPE_F32, 151);
    const auto model = make_model(device.get(), config, weights);
    const std::int32_t vocab = config.vocab_size;
    const auto tokens = random_tokens(45, vocab, 152);
    const auto pages = identity_pages(4);
    const auto dense_pool = make_pool(device.get(), pool_config(INF_DTYPE_I8, 2, 2, 16, 16, 4, 8));
    const auto sparse_pool = make_pool(device.get(), pool_config(INF_DTYPE_I8, 2, 2, 16, 16, 4, 8));
    inf_sparse_step covering = sparse_step();
    covering.budget_tokens = 64;
    const auto dense = run_chunked(model.get(), dense_pool.get(), tokens, 10, pages, 16, vocab);
    EXPECT_LT(relative_error(dense, reference_logits(config, weights, tokens)), 3e-2);
    const auto covered = run_chunked(model.get(), sparse_pool.get(), tokens, 10, pages, 16, vocab, &covering);
    EXPECT_LT(relative_error(covered, dense), 1e-6);

    const auto pool = make_pool(device.get(), pool_config(INF_DTYPE_I8, 2, 2, 16, 16, 4, 8));
    const std::vector<std::int32_t> streaming = {0, 1, 1, 0};  // [layers][kv_heads]
    const std::int32_t budget_pages = 2;
    const std::int64_t slot_ints = std::int64_t{config.layers} * config.kv_heads * (1 + budget_pages);
    std::vector<std::int32_t> store(static_cast<std::size_t>(slot_ints), -1);
    const std::int32_t slot = 0;
    const std::int32_t reselect = 1;
    inf_sparse_step sparse = sparse_step();
    sparse.streaming_heads = streaming.data();
    sparse.decode_sink_tokens = sparse.prefill_sink_tokens = 4;
    sparse.decode_local_tokens = sparse.prefill_local_tokens = 12;
    sparse.budget_tokens = budget_pages * 16;
    sparse.selection_store = store.data();
    sparse.slot_ints = slot_ints;
    sparse.selection_slots = &slot;
    sparse.reselect = &reselect;
    // Prefill chunks, then a decode step (decode rows select pages).
    auto logits = run_chunked(model.get(), pool.get(), std::vector<std::int32_t>(tokens.begin(), tokens.end() - 1), 15,
                              pages, 16, vocab, &sparse);
    std::vector<float> last;
    ASSERT_OK(run_step(model.get(), pool.get(), {{{tokens.back()}, 44, pages}}, &sparse, last, vocab));
    logits.insert(logits.end(), last.begin(), last.end());
    for (const double x : logits) {
        ASSERT_TRUE(std::isfinite(x));
    }
    for (std::int64_t list = 0; list < std::int64_t{config.layers} * config.kv_heads; ++list) {
        const std::int32_t* entry = store.data() + list * (1 + budget_pages);
        ASSERT_EQ(entry[0], streaming[static_cast<std::size_t>(list)] != 0 ? 0 : budget_pages) << "list " << list;
        for (std::int32_t i = 1; i <= entry[0]; ++i) {
            ASSERT_GE(entry[i], 0);
            ASSERT_LT(entry[i], 3);  // 45 tokens: entries 0 .. 2
        }
    }
}

TEST(ModelSparse, StreamingHeadsMatchReferenceOverSinkAndLocalKeys) {
    const auto device = make_device();
    const inf_model_config config = tiny_config(INF_ROPE_STYLE_HALF);
    const RandomWeights weights(config, INF_TENSOR_TYPE_F32, 111);
    const auto model = make_model(device.get(), config, weights);
    ReferenceMask mask;
    mask.streaming = {0, 1, 1, 0};  // layer 0: KV head 1; layer 1: KV head 0
    mask.sink = 5;
    mask.local = 9;
    inf_sparse_step sparse = sparse_step();
    sparse.streaming_heads = mask.streaming.data();
    sparse.decode_sink_tokens = sparse.prefill_sink_tokens = mask.sink;
    sparse.decode_local_tokens = sparse.prefill_local_tokens = mask.local;

    const auto a = random_tokens(44, config.vocab_size, 112);
    const auto b = random_tokens(30, config.vocab_size, 113);
    const std::vector<std::int32_t> pages_a{7, 2, 5};
    const std::vector<std::int32_t> pages_b{0, 4};
    const auto pool = make_pool(device.get(), pool_config(INF_DTYPE_F32, 2, 2, 16, 16, 8, 8));
    // a: prefill 40 in chunks of 8, b: prefill 22; then steps mixing a's decodes with b's chunks (two
    // attention calls per layer: decode and prefill windows).
    std::vector<float> out_a = run_chunked(model.get(), pool.get(), std::vector<std::int32_t>(a.begin(), a.begin() + 40),
                                           8, pages_a, 16, config.vocab_size, &sparse);
    std::vector<float> out_b = run_chunked(model.get(), pool.get(), std::vector<std::int32_t>(b.begin(), b.begin() + 22),
                                           22, pages_b, 16, config.vocab_size, &sparse);
    const std::size_t v = static_cast<std::size_t>(config.vocab_size);
    for (std::int32_t i = 0; i < 4; ++i) {
        const std::int32_t pa = 40 + i;
        const std::int32_t pb = 22 + 2 * i;
        std::vector<float> logits;
        ASSERT_OK(run_step(model.get(), pool.get(),
                           {{{a[static_cast<std::size_t>(pa)]}, pa, pages_a},
                            {{b[static_cast<std::size_t>(pb)], b[static_cast<std::size_t>(pb) + 1]}, pb, pages_b}},
                           &sparse, logits, config.vocab_size));
        out_a.insert(out_a.end(), logits.begin(), logits.begin() + static_cast<std::ptrdiff_t>(v));
        out_b.insert(out_b.end(), logits.begin() + static_cast<std::ptrdiff_t>(v), logits.end());
    }
    EXPECT_LT(relative_error(out_a, reference_logits(config, weights, a, &mask)), 1e-4);
    EXPECT_LT(relative_error(out_b, reference_logits(config, weights, b, &mask)), 1e-4);
    // The mask matters: the dense reference differs.
    EXPECT_GT(relative_error(out_a, reference_logits(config, weights, a)), 1e-3);
}

// A decode with selection: retrieval heads read the stored selection; the reference restricted to those
// pages gives the same logits; a second pool reusing the stored slot (reselect 0) reproduces them.
TEST(ModelSparse, SelectionIsStoredAndReused) {
    const auto device = make_device();
    const inf_model_config config = tiny_config();
    const RandomWeights weights(config, INF_TENSOR_TYPE_F32, 121);
    const auto model = make_model(device.get(), config, weights);
    const auto tokens = random_tokens(81, config.vocab_size, 122);
    const auto pages = identity_pages(6);
    const std::int32_t vocab = config.vocab_size;
    for (std::int32_t per_query_head : {0, 1}) {
        SCOPED_TRACE(per_query_head);
        const std::int32_t lists = per_query_head != 0 ? config.q_heads : config.kv_heads;
        const std::int32_t budget_pages = 2;
        const std::int64_t slot_ints = std::int64_t{config.layers} * lists * (1 + budget_pages);
        std::vector<std::int32_t> store(static_cast<std::size_t>(3 * slot_ints), -7);
        const std::vector<std::int32_t> slots{2};
        std::vector<std::int32_t> reselect{1};
        inf_sparse_step sparse = sparse_step();
        sparse.budget_tokens = budget_pages * 16;
        sparse.per_query_head = per_query_head;
        sparse.selection_store = store.data();
        sparse.slot_ints = slot_ints;
        sparse.selection_slots = slots.data();
        sparse.reselect = reselect.data();

        const std::vector<std::int32_t> prompt(tokens.begin(), tokens.end() - 1);
        const SequenceStep decode{{tokens.back()}, 80, pages};
        std::vector<float> fresh;
        std::vector<float> reused;
        {
            const auto pool = make_pool(device.get(), pool_config(INF_DTYPE_F32, 2, 2, 16, 16, 6, 8));
            run_chunked(model.get(), pool.get(), prompt, 80, pages, 16, vocab);
            ASSERT_OK(run_step(model.get(), pool.get(), {decode}, &sparse, fresh, vocab));
        }
        // Every list holds budget_pages ascending entries, the newest (entry 5) among them.
        for (std::int64_t list = 0; list < std::int64_t{config.layers} * lists; ++list) {
            const std::int32_t* entry = store.data() + 2 * slot_ints + list * (1 + budget_pages);
            ASSERT_EQ(entry[0], budget_pages);
            EXPECT_LT(entry[1], entry[2]);
            EXPECT_EQ(entry[2], 5);
        }
        {
            reselect[0] = 0;
            const auto pool = make_pool(device.get(), pool_config(INF_DTYPE_F32, 2, 2, 16, 16, 6, 8));
            run_chunked(model.get(), pool.get(), prompt, 80, pages, 16, vocab);
            ASSERT_OK(run_step(model.get(), pool.get(), {decode}, &sparse, reused, vocab));
        }
        EXPECT_EQ(relative_error(reused, fresh), 0.0);

        if (per_query_head == 0) {
            ReferenceMask mask;
            mask.page_size = 16;
            for (std::int64_t list = 0; list < std::int64_t{config.layers} * lists; ++list) {
                const std::int32_t* entry = store.data() + 2 * slot_ints + list * (1 + budget_pages);
                mask.last_pages.emplace_back(entry + 1, entry + 1 + entry[0]);
            }
            const auto expected = reference_logits(config, weights, tokens, &mask);
            EXPECT_LT(relative_error(fresh, last_row(expected, vocab)), 1e-4);
            EXPECT_GT(relative_error(fresh, last_row(reference_logits(config, weights, tokens), vocab)), 1e-4);

            // A different stored selection changes the logits: the stored slot is what is read.
            for (std::int64_t list = 0; list < std::int64_t{config.layers} * lists; ++list) {
                std::int32_t* entry = store.data() + 2 * slot_ints + list * (1 + budget_pages);
                entry[1] = entry[1] == 0 ? 1 : 0;
            }
            const auto pool = make_pool(device.get(), pool_config(INF_DTYPE_F32, 2, 2, 16, 16, 6, 8));
            run_chunked(model.get(), pool.get(), prompt, 80, pages, 16, vocab);
            std::vector<float> other;
            ASSERT_OK(run_step(model.get(), pool.get(), {decode}, &sparse, other, vocab));
            EXPECT_GT(relative_error(other, fresh), 1e-5);
        }
    }
}

// Streaming heads and selection in one decode: streaming heads see sink + local keys, retrieval heads the
// stored selection (newest page forced in), both checked against the reference with the same restrictions.
TEST(ModelSparse, StreamingAndSelectedHeadsTogetherMatchReference) {
    const auto device = make_device();
    const inf_model_config config = tiny_config(INF_ROPE_STYLE_HALF, INF_ROPE_SCALING_LLAMA3);
    const RandomWeights weights(config, INF_TENSOR_TYPE_F32, 141);
    const auto model = make_model(device.get(), config, weights);
    const std::int32_t vocab = config.vocab_size;
    const auto tokens = random_tokens(90, vocab, 142);
    const auto pages = identity_pages(6);
    ReferenceMask mask;
    mask.streaming = {1, 0, 0, 1};
    mask.sink = 4;
    mask.local = 12;
    mask.page_size = 16;
    const std::int32_t budget_pages = 3;
    const std::int64_t slot_ints = std::int64_t{config.layers} * config.kv_heads * (1 + budget_pages);
    std::vector<std::int32_t> store(static_cast<std::size_t>(slot_ints), -1);
    const std::int32_t slot = 0;
    const std::int32_t reselect = 1;
    inf_sparse_step sparse = sparse_step();
    sparse.streaming_heads = mask.streaming.data();
    sparse.decode_sink_tokens = sparse.prefill_sink_tokens = mask.sink;
    sparse.decode_local_tokens = sparse.prefill_local_tokens = mask.local;
    sparse.budget_tokens = budget_pages * 16;
    sparse.selection_store = store.data();
    sparse.slot_ints = slot_ints;
    sparse.selection_slots = &slot;
    sparse.reselect = &reselect;

    const auto pool = make_pool(device.get(), pool_config(INF_DTYPE_F32, 2, 2, 16, 16, 6, 4));
    auto logits = run_chunked(model.get(), pool.get(), std::vector<std::int32_t>(tokens.begin(), tokens.end() - 1), 30,
                              pages, 16, vocab, &sparse);
    std::vector<float> last;
    ASSERT_OK(run_step(model.get(), pool.get(), {{{tokens.back()}, 89, pages}}, &sparse, last, vocab));
    logits.insert(logits.end(), last.begin(), last.end());
    for (std::int64_t list = 0; list < std::int64_t{config.layers} * config.kv_heads; ++list) {
        const std::int32_t* entry = store.data() + list * (1 + budget_pages);
        // Streaming heads never read a selection, so the selector skips them: their stored lists are empty.
        ASSERT_EQ(entry[0], mask.streaming[static_cast<std::size_t>(list)] != 0 ? 0 : budget_pages) << "list " << list;
        mask.last_pages.emplace_back(entry + 1, entry + 1 + entry[0]);
    }
    EXPECT_LT(relative_error(logits, reference_logits(config, weights, tokens, &mask)), 1e-4);

    // Reusing the stored selection next step: the streaming heads' empty lists are fine (never read).
    const std::int32_t reuse = 0;
    sparse.reselect = &reuse;
    std::vector<float> next;
    ASSERT_OK(run_step(model.get(), pool.get(), {{{tokens.front()}, 90, pages}}, &sparse, next, vocab));
    for (const float x : next) {
        ASSERT_TRUE(std::isfinite(x));
    }
}
