// The CPU forward step against the float64 reference, and its invariances (chunking, batching, page size).
#include <algorithm>
#include <thread>
#include <numeric>
#include <random>

#include "model_fixture.h"

using namespace model_test;
using inf_test::make_device;
using inf_test::make_pool;
using inf_test::pool_config;

namespace {

// Pages of the pool in a shuffled order, so page tables really indirect.
std::vector<std::int32_t> shuffled_pages(std::int32_t count, std::uint32_t seed) {
    std::vector<std::int32_t> pages(static_cast<std::size_t>(count));
    std::iota(pages.begin(), pages.end(), 0);
    std::shuffle(pages.begin(), pages.end(), std::mt19937(seed));
    return pages;
}

struct Case {
    inf_tensor_type type;
    inf_rope_style style;
    inf_rope_scaling scaling;
    inf_dtype pool;
    double tolerance;
};

void check_against_reference(const Case& test, std::uint32_t seed) {
    SCOPED_TRACE(testing::Message() << "type " << test.type << " style " << test.style << " scaling " << test.scaling
                                    << " pool " << test.pool);
    const auto device = make_device();
    const inf_model_config config = tiny_config(test.style, test.scaling);
    const RandomWeights weights(config, test.type, seed);
    const auto model = make_model(device.get(), config, weights);
    ASSERT_NE(model, nullptr);
    const auto pool = make_pool(device.get(), pool_config(test.pool, 2, 2, 16, 16, 8, 0));
    // 40 tokens reach positions past rope_original_context / high_freq_factor, so LLAMA3 blends.
    const auto tokens = random_tokens(40, config.vocab_size, seed + 1);
    const auto logits = run_chunked(model.get(), pool.get(), tokens, 40, shuffled_pages(8, seed), 16, config.vocab_size);
    const auto expected = reference_logits(config, weights, tokens);
    EXPECT_LT(relative_error(logits, expected), test.tolerance);
}

}  // namespace

TEST(ModelForward, F32WeightsMatchReferenceForEveryRopeStyleAndScaling) {
    std::uint32_t seed = 10;
    for (auto style : {INF_ROPE_STYLE_INTERLEAVED, INF_ROPE_STYLE_HALF}) {
        for (auto scaling : {INF_ROPE_SCALING_NONE, INF_ROPE_SCALING_LINEAR, INF_ROPE_SCALING_LLAMA3}) {
            check_against_reference({INF_TENSOR_TYPE_F32, style, scaling, INF_DTYPE_F32, 1e-4}, seed++);
        }
    }
}

TEST(ModelForward, ConvertedWeightsMatchReferenceOfDecodedValues) {
    check_against_reference({INF_TENSOR_TYPE_F16, INF_ROPE_STYLE_HALF, INF_ROPE_SCALING_LLAMA3, INF_DTYPE_F32, 1e-4}, 21);
    check_against_reference({INF_TENSOR_TYPE_BF16, INF_ROPE_STYLE_INTERLEAVED, INF_ROPE_SCALING_NONE, INF_DTYPE_F32, 1e-4}, 22);
    check_against_reference({INF_TENSOR_TYPE_Q8_0, INF_ROPE_STYLE_HALF, INF_ROPE_SCALING_LINEAR, INF_DTYPE_F32, 1e-4}, 23);
}

TEST(ModelForward, Bf16PoolStaysNearReference) {
    check_against_reference({INF_TENSOR_TYPE_F32, INF_ROPE_STYLE_HALF, INF_ROPE_SCALING_NONE, INF_DTYPE_BF16, 2e-2}, 31);
    check_against_reference({INF_TENSOR_TYPE_F32, INF_ROPE_STYLE_INTERLEAVED, INF_ROPE_SCALING_NONE, INF_DTYPE_F16, 2e-2}, 32);
}

// int8 KV (one scale per token and head): ~0.4% per-element error on the keys and values, which the
// tiny model's softmax and residual stream carry into the logits at about the bf16 pool's level.
TEST(ModelForward, Int8PoolStaysNearReference) {
    check_against_reference({INF_TENSOR_TYPE_F32, INF_ROPE_STYLE_HALF, INF_ROPE_SCALING_NONE, INF_DTYPE_I8, 3e-2}, 33);
    check_against_reference({INF_TENSOR_TYPE_BF16, INF_ROPE_STYLE_INTERLEAVED, INF_ROPE_SCALING_LLAMA3, INF_DTYPE_I8, 3e-2}, 34);
}

TEST(ModelForward, TiedEmbeddingsUseTheTokenEmbeddingAsLmHead) {
    const auto device = make_device();
    inf_model_config config = tiny_config();
    config.tied_embeddings = 1;
    const RandomWeights weights(config, INF_TENSOR_TYPE_F32, 41);
    const auto model = make_model(device.get(), config, weights);
    const auto pool = make_pool(device.get(), pool_config(INF_DTYPE_F32, 2, 2, 16, 16, 4, 0));
    const auto tokens = random_tokens(20, config.vocab_size, 42);
    const auto logits = run_chunked(model.get(), pool.get(), tokens, 20, shuffled_pages(4, 43), 16, config.vocab_size);
    EXPECT_LT(relative_error(logits, reference_logits(config, weights, tokens)), 1e-4);
}

TEST(ModelForward, ChunkingDoesNotChangeLogits) {
    const auto device = make_device();
    const inf_model_config config = tiny_config(INF_ROPE_STYLE_HALF);
    const RandomWeights weights(config, INF_TENSOR_TYPE_F32, 51);
    const auto model = make_model(device.get(), config, weights);
    const auto tokens = random_tokens(37, config.vocab_size, 52);
    const auto pages = shuffled_pages(6, 53);
    std::vector<std::vector<float>> runs;
    for (std::int32_t chunk : {37, 3, 1}) {
        const auto pool = make_pool(device.get(), pool_config(INF_DTYPE_F32, 2, 2, 16, 16, 6, 0));
        runs.push_back(run_chunked(model.get(), pool.get(), tokens, chunk, pages, 16, config.vocab_size));
    }
    EXPECT_LT(relative_error(runs[1], runs[0]), 1e-5);
    EXPECT_LT(relative_error(runs[2], runs[0]), 1e-5);
}

TEST(ModelForward, BatchedSequencesMatchRunsAlone) {
    const auto device = make_device();
    const inf_model_config config = tiny_config();
    const RandomWeights weights(config, INF_TENSOR_TYPE_F32, 61);
    const auto model = make_model(device.get(), config, weights);
    const auto a = random_tokens(30, config.vocab_size, 62);
    const auto b = random_tokens(21, config.vocab_size, 63);
    const auto pages = shuffled_pages(8, 64);
    const std::vector<std::int32_t> pages_a(pages.begin(), pages.begin() + 2);
    const std::vector<std::int32_t> pages_b(pages.begin() + 4, pages.begin() + 6);

    // Alone: a as prefill then one decode; b the same.
    std::vector<float> alone;
    for (const auto* seq : {&a, &b}) {
        const auto pool = make_pool(device.get(), pool_config(INF_DTYPE_F32, 2, 2, 16, 16, 8, 0));
        const auto& p = seq == &a ? pages_a : pages_b;
        const auto logits = run_chunked(model.get(), pool.get(), *seq, 29, p, 16, config.vocab_size);
        alone.insert(alone.end(), logits.begin(), logits.end());
    }
    // Batched: prefills of both in one step, then both decodes in one step.
    const auto pool = make_pool(device.get(), pool_config(INF_DTYPE_F32, 2, 2, 16, 16, 8, 0));
    std::vector<float> first, second;
    ASSERT_OK(run_step(model.get(), pool.get(),
                       {{std::vector<std::int32_t>(a.begin(), a.begin() + 29), 0, pages_a},
                        {std::vector<std::int32_t>(b.begin(), b.begin() + 20), 0, pages_b}},
                       nullptr, first, config.vocab_size));
    ASSERT_OK(run_step(model.get(), pool.get(), {{{a[29]}, 29, pages_a}, {{b[20]}, 20, pages_b}}, nullptr, second,
                       config.vocab_size));
    const std::size_t v = static_cast<std::size_t>(config.vocab_size);
    std::vector<float> batched;
    batched.insert(batched.end(), first.begin(), first.begin() + static_cast<std::ptrdiff_t>(29 * v));
    batched.insert(batched.end(), second.begin(), second.begin() + static_cast<std::ptrdiff_t>(v));
    batched.insert(batched.end(), first.begin() + static_cast<std::ptrdiff_t>(29 * v), first.end());
    batched.insert(batched.end(), second.begin() + static_cast<std::ptrdiff_t>(v), second.end());
    EXPECT_LT(relative_error(batched, alone), 1e-5);
}

TEST(ModelForward, PageSizeDoesNotChangeLogits) {
    const auto device = make_device();
    const inf_model_config config = tiny_config();
    const RandomWeights weights(config, INF_TENSOR_TYPE_F32, 71);
    const auto model = make_model(device.get(), config, weights);
    const auto tokens = random_tokens(70, config.vocab_size, 72);
    const auto pool16 = make_pool(device.get(), pool_config(INF_DTYPE_F32, 2, 2, 16, 16, 8, 0));
    const auto pool64 = make_pool(device.get(), pool_config(INF_DTYPE_F32, 2, 2, 16, 64, 4, 0));
    const auto small = run_chunked(model.get(), pool16.get(), tokens, 17, shuffled_pages(8, 73), 16, config.vocab_size);
    const auto large = run_chunked(model.get(), pool64.get(), tokens, 17, shuffled_pages(4, 74), 64, config.vocab_size);
    EXPECT_LT(relative_error(small, large), 1e-5);
}

TEST(ModelForward, ModelBytesCountOnlyConvertedCopies) {
    const auto device = make_device();
    const inf_model_config config = tiny_config();
    const RandomWeights f32(config, INF_TENSOR_TYPE_F32, 81);
    const RandomWeights q8(config, INF_TENSOR_TYPE_Q8_0, 81);
    std::uint64_t in_place = 1;
    std::uint64_t converted = 0;
    std::uint64_t elements = 0;
    for (const auto& t : f32.tensors()) elements += t.bytes / 4;
    {
        const auto model = make_model(device.get(), config, f32);
        ASSERT_OK(inf_model_bytes(model.get(), &in_place));
    }
    const auto model = make_model(device.get(), config, q8);
    ASSERT_OK(inf_model_bytes(model.get(), &converted));
    EXPECT_EQ(in_place, 0U);
    EXPECT_EQ(converted, elements * 4);
}

TEST(ModelForward, ProgressReachesTotal) {
    const auto device = make_device();
    const inf_model_config config = tiny_config();
    const RandomWeights weights(config, INF_TENSOR_TYPE_BF16, 91);
    struct Seen {
        std::vector<std::uint64_t> done;
        std::uint64_t total = 0;
    } seen;
    inf_model* model = nullptr;
    ASSERT_OK(inf_model_create(device.get(), &config, weights.tensors().data(),
                               static_cast<std::int32_t>(weights.tensors().size()),
                               [](void* user, std::uint64_t done, std::uint64_t total) {
                                   auto* s = static_cast<Seen*>(user);
                                   s->done.push_back(done);
                                   s->total = total;
                               },
                               &seen, &model));
    Model owner(model);
    std::uint64_t bytes = 0;
    for (const auto& t : weights.tensors()) bytes += t.bytes;
    EXPECT_EQ(seen.total, bytes);
    ASSERT_GE(seen.done.size(), weights.tensors().size());
    EXPECT_TRUE(std::is_sorted(seen.done.begin(), seen.done.end()));
    EXPECT_EQ(seen.done.back(), bytes);
}

TEST(ModelForward, ConcurrentStepsOnOneModelMatchSerialSteps) {
    const auto device = make_device();
    const inf_model_config config = tiny_config();
    const RandomWeights weights(config, INF_TENSOR_TYPE_F32, 131);
    const auto model = make_model(device.get(), config, weights);
    constexpr int kThreads = 3;
    std::vector<std::vector<std::int32_t>> prompts;
    std::vector<std::vector<float>> serial(kThreads), parallel(kThreads);
    for (int i = 0; i < kThreads; ++i) {
        prompts.push_back(random_tokens(static_cast<std::size_t>(20 + 7 * i), config.vocab_size, 132 + static_cast<std::uint32_t>(i)));
        const auto pool = make_pool(device.get(), pool_config(INF_DTYPE_F32, 2, 2, 16, 16, 4, 0));
        serial[static_cast<std::size_t>(i)] = run_chunked(model.get(), pool.get(), prompts.back(), 5, shuffled_pages(4, 9), 16,
                                                          config.vocab_size);
    }
    std::vector<inf_test::Pool> pools;
    for (int i = 0; i < kThreads; ++i) pools.push_back(make_pool(device.get(), pool_config(INF_DTYPE_F32, 2, 2, 16, 16, 4, 0)));
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
        threads.emplace_back([&, i] {
            const auto n = static_cast<std::size_t>(i);
            parallel[n] = run_chunked(model.get(), pools[n].get(), prompts[n], 5, shuffled_pages(4, 9), 16, config.vocab_size);
        });
    }
    for (auto& t : threads) t.join();
    for (int i = 0; i < kThreads; ++i) {
        EXPECT_LT(relative_error(parallel[static_cast<std::size_t>(i)], serial[static_cast<std::size_t>(i)]), 1e-6);
    }
}
