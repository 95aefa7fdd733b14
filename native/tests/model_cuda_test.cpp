// The CUDA forward step (CudaLlamaModel + the plug-in's model_step) against the CPU step and the float64
// reference of model_fixture.h, through the C ABI: the same random model on both devices, the same plans
// (prefill chunks and decodes mixed, ragged lengths, partly filled last pages, shuffled page tables, logit
// rows in reverse token order), several steps. Logits are NaN-poisoned before every step. Tolerances: f32
// weights and an f32 pool 1e-4 relative (cuBLAS runs true f32: no TF32); bf16 storage 3e-2 (the device
// rounds GEMM inputs to bf16 too). Greedy tokens must agree wherever the CPU's top two logits are further
// apart than that tolerance allows to swap. Skips, naming the reason, where no CUDA device loads.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "cuda_test_util.h"
#include "model_fixture.h"

using namespace model_test;
using inf_test::make_device;
using inf_test::make_pool;
using inf_test::pool_config;

namespace {

// tiny_config with a chosen head_dim (64 is one the tensor-core prefill kernel takes) and a wider vocab.
inf_model_config cuda_config(std::int32_t head_dim, inf_rope_style style) {
    inf_model_config c = tiny_config(style, INF_ROPE_SCALING_LLAMA3);
    c.head_dim = head_dim;
    c.dim = 128;
    c.ffn_dim = 192;
    c.vocab_size = 96;
    return c;
}

// One sequence's part of a step: positions [first, first + count) of its token list.
struct Part {
    int sequence;
    std::int32_t first;
    std::int32_t count;
};

struct StepLogits {
    std::vector<float> logits;              // [rows][vocab]
    std::vector<std::pair<int, int>> rows;  // (sequence, position) of each logit row
};

// A model, its pool and the sequences' page tables on one device.
struct Side {
    inf_test::Device device;
    Model model;
    inf_test::Pool pool;
};

class ModelCuda : public ::testing::Test {
protected:
    void SetUp() override {
        if (inf_backend_load(INF_DEVICE_KIND_CUDA) != INF_STATUS_OK) {
            GTEST_SKIP() << "no CUDA device: " << inf_last_error();
        }
    }
};

// Builds and runs the plan of parts; logit rows are every token, in reverse order.
inf_status run_parts(inf_model* model, inf_page_pool* pool, const std::vector<std::vector<std::int32_t>>& tokens,
                     const std::vector<std::vector<std::int32_t>>& tables, std::int32_t page_size,
                     const std::vector<Part>& parts, std::int32_t vocab, StepLogits& out) {
    std::vector<std::int32_t> token_ids, positions, q_starts{0}, kv_lengths, page_starts{0}, page_ids, logit_tokens;
    std::vector<std::pair<int, int>> token_rows;
    for (const Part& part : parts) {
        for (std::int32_t i = 0; i < part.count; ++i) {
            token_ids.push_back(
                tokens[static_cast<std::size_t>(part.sequence)][static_cast<std::size_t>(part.first + i)]);
            positions.push_back(part.first + i);
            token_rows.emplace_back(part.sequence, part.first + i);
        }
        q_starts.push_back(static_cast<std::int32_t>(token_ids.size()));
        const std::int32_t length = part.first + part.count;
        kv_lengths.push_back(length);
        const auto& table = tables[static_cast<std::size_t>(part.sequence)];
        const std::int32_t needed = (length + page_size - 1) / page_size;
        page_ids.insert(page_ids.end(), table.begin(), table.begin() + needed);
        page_starts.push_back(static_cast<std::int32_t>(page_ids.size()));
    }
    out.rows.clear();
    for (std::int32_t t = static_cast<std::int32_t>(token_ids.size()) - 1; t >= 0; --t) {
        logit_tokens.push_back(t);
        out.rows.push_back(token_rows[static_cast<std::size_t>(t)]);
    }
    inf_step_plan plan{};
    plan.size = sizeof plan;
    plan.sequences = static_cast<std::int32_t>(parts.size());
    plan.tokens = static_cast<std::int32_t>(token_ids.size());
    plan.logit_rows = plan.tokens;
    plan.token_ids = token_ids.data();
    plan.positions = positions.data();
    plan.q_starts = q_starts.data();
    plan.kv_lengths = kv_lengths.data();
    plan.page_starts = page_starts.data();
    plan.page_ids = page_ids.data();
    plan.logit_tokens = logit_tokens.data();
    out.logits.assign(static_cast<std::size_t>(plan.tokens) * static_cast<std::size_t>(vocab),
                      std::numeric_limits<float>::quiet_NaN());
    return inf_model_step(model, pool, &plan, out.logits.data());
}

struct Case {
    std::int32_t head_dim;
    inf_tensor_type weights;
    inf_dtype pool;
    std::int32_t page_size;
    double tolerance;
    const char* prefill_mode;  // INFINITE_CUDA_PREFILL for the CUDA side, or null
};

void compare_with_cpu_and_reference(const Case& test, std::uint32_t seed) {
    SCOPED_TRACE(testing::Message() << "head_dim " << test.head_dim << " weights " << test.weights << " pool "
                                    << test.pool << " page_size " << test.page_size << " prefill "
                                    << (test.prefill_mode != nullptr ? test.prefill_mode : "auto"));
    const inf_model_config config =
        cuda_config(test.head_dim, seed % 2 == 0 ? INF_ROPE_STYLE_HALF : INF_ROPE_STYLE_INTERLEAVED);
    const RandomWeights weights(config, test.weights, seed);
    constexpr int kSequences = 3;
    constexpr std::int32_t kLength = 160;  // tokens per sequence at most
    const std::int32_t pages_per_sequence = (kLength + test.page_size - 1) / test.page_size;
    const std::int32_t pages = kSequences * pages_per_sequence + 3;
    // Every sequence's page table: pool pages in a shuffled order, so tables really indirect.
    std::vector<std::int32_t> order(static_cast<std::size_t>(pages));
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), std::mt19937(seed));
    std::vector<std::vector<std::int32_t>> tables(kSequences);
    std::vector<std::vector<std::int32_t>> tokens(kSequences);
    for (int s = 0; s < kSequences; ++s) {
        tables[static_cast<std::size_t>(s)].assign(order.begin() + s * pages_per_sequence,
                                                   order.begin() + (s + 1) * pages_per_sequence);
        tokens[static_cast<std::size_t>(s)] =
            random_tokens(kLength, config.vocab_size, seed * 7 + static_cast<std::uint32_t>(s));
    }
    // Prefill chunks of ragged lengths and decodes, mixed in one batch; sequences start at different steps.
    const std::vector<std::vector<Part>> steps{
        {{0, 0, 37}, {1, 0, 50}},
        {{0, 37, 1}, {1, 50, 83}, {2, 0, 5}},
        {{2, 5, 1}, {0, 38, 1}, {1, 133, 1}},
        {{1, 134, 1}, {2, 6, 14}, {0, 39, 1}},
        {{0, 40, 1}, {1, 135, 1}, {2, 20, 1}},
    };

    Side cpu{make_device(INF_DEVICE_KIND_CPU), nullptr, nullptr};
    Side gpu{make_device(INF_DEVICE_KIND_CUDA), nullptr, nullptr};
    ASSERT_NE(cpu.device, nullptr);
    ASSERT_NE(gpu.device, nullptr);
    cpu.model = make_model(cpu.device.get(), config, weights);
    gpu.model = make_model(gpu.device.get(), config, weights);
    ASSERT_NE(cpu.model, nullptr);
    ASSERT_NE(gpu.model, nullptr);
    const inf_page_pool_config pc =
        pool_config(test.pool, config.layers, config.kv_heads, config.head_dim, test.page_size, pages, 0);
    cpu.pool = make_pool(cpu.device.get(), pc);
    gpu.pool = make_pool(gpu.device.get(), pc);
    ASSERT_NE(cpu.pool, nullptr);
    ASSERT_NE(gpu.pool, nullptr);

    std::vector<std::vector<double>> reference(kSequences);
    for (int s = 0; s < kSequences; ++s) {
        reference[static_cast<std::size_t>(s)] = reference_logits(config, weights, tokens[static_cast<std::size_t>(s)]);
    }
    const auto vocab = static_cast<std::size_t>(config.vocab_size);
    int compared_tokens = 0;
    for (std::size_t step = 0; step < steps.size(); ++step) {
        SCOPED_TRACE(testing::Message() << "step " << step);
        StepLogits on_cpu;
        StepLogits on_gpu;
        ASSERT_OK(run_parts(cpu.model.get(), cpu.pool.get(), tokens, tables, test.page_size, steps[step],
                            config.vocab_size, on_cpu));
        {
            inf_test::PrefillMode mode(test.prefill_mode);
            ASSERT_OK(run_parts(gpu.model.get(), gpu.pool.get(), tokens, tables, test.page_size, steps[step],
                                config.vocab_size, on_gpu));
        }
        ASSERT_EQ(on_cpu.rows, on_gpu.rows);
        std::vector<double> expected;
        for (const auto& [s, p] : on_gpu.rows) {
            const auto& ref = reference[static_cast<std::size_t>(s)];
            expected.insert(expected.end(),
                            ref.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(p) * vocab),
                            ref.begin() + static_cast<std::ptrdiff_t>((static_cast<std::size_t>(p) + 1) * vocab));
        }
        EXPECT_LT(relative_error(on_gpu.logits, on_cpu.logits), test.tolerance);
        EXPECT_LT(relative_error(on_gpu.logits, expected), test.tolerance);
        // Greedy tokens: equal on every row whose CPU top-2 gap is beyond what the tolerance can swap.
        double scale = 0.0;
        for (const float v : on_cpu.logits)
            scale = std::max(scale, static_cast<double>(std::fabs(v)));
        for (std::size_t r = 0; r < on_gpu.rows.size(); ++r) {
            const float* c = on_cpu.logits.data() + r * vocab;
            const float* g = on_gpu.logits.data() + r * vocab;
            const auto best_cpu = static_cast<std::size_t>(std::max_element(c, c + vocab) - c);
            const auto best_gpu = static_cast<std::size_t>(std::max_element(g, g + vocab) - g);
            float second = -std::numeric_limits<float>::infinity();
            for (std::size_t i = 0; i < vocab; ++i) {
                if (i != best_cpu)
                    second = std::max(second, c[i]);
            }
            if (c[best_cpu] - second > 2.0 * test.tolerance * scale) {
                EXPECT_EQ(best_gpu, best_cpu) << "row " << r;
                ++compared_tokens;
            }
        }
    }
    // The greedy check must not pass by comparing nothing.
    EXPECT_GE(compared_tokens, 10);
}

}  // namespace

TEST_F(ModelCuda, F32ModelMatchesCpuAndReferenceTightly) {
    compare_with_cpu_and_reference({16, INF_TENSOR_TYPE_F32, INF_DTYPE_F32, 16, 1e-4, nullptr}, 101);
    compare_with_cpu_and_reference({64, INF_TENSOR_TYPE_F32, INF_DTYPE_F32, 64, 1e-4, nullptr}, 102);
}

TEST_F(ModelCuda, Bf16ModelAndPoolMatchCpuAndReference) {
    compare_with_cpu_and_reference({64, INF_TENSOR_TYPE_BF16, INF_DTYPE_BF16, 16, 3e-2, nullptr}, 103);
    compare_with_cpu_and_reference({16, INF_TENSOR_TYPE_BF16, INF_DTYPE_BF16, 64, 3e-2, nullptr}, 104);
}

TEST_F(ModelCuda, PrefillThroughEitherAttentionKernelMatches) {
    // head_dim 64, bf16 pool: the tensor-core prefill kernel applies; "simt" forces the split-KV one.
    compare_with_cpu_and_reference({64, INF_TENSOR_TYPE_BF16, INF_DTYPE_BF16, 16, 3e-2, "mma"}, 105);
    compare_with_cpu_and_reference({64, INF_TENSOR_TYPE_BF16, INF_DTYPE_BF16, 64, 3e-2, "simt"}, 106);
}

TEST_F(ModelCuda, ConvertedWeightsAndOtherPoolsMatch) {
    // Q8_0 and F16 tensors are converted on the host to bf16; f32 weights over a bf16 / f16 pool stay f32.
    compare_with_cpu_and_reference({16, INF_TENSOR_TYPE_Q8_0, INF_DTYPE_F16, 16, 3e-2, nullptr}, 107);
    compare_with_cpu_and_reference({64, INF_TENSOR_TYPE_F16, INF_DTYPE_BF16, 64, 3e-2, nullptr}, 108);
    compare_with_cpu_and_reference({16, INF_TENSOR_TYPE_F32, INF_DTYPE_BF16, 16, 2e-2, nullptr}, 109);
}

TEST_F(ModelCuda, ReportsDeviceBytesAndProgress) {
    const inf_model_config config = cuda_config(64, INF_ROPE_STYLE_HALF);
    const auto device = make_device(INF_DEVICE_KIND_CUDA);
    ASSERT_NE(device, nullptr);
    for (const inf_tensor_type type : {INF_TENSOR_TYPE_F32, INF_TENSOR_TYPE_BF16}) {
        const RandomWeights weights(config, type, 201);
        std::vector<std::pair<std::uint64_t, std::uint64_t>> calls;
        inf_model* raw = nullptr;
        ASSERT_OK(inf_model_create(
            device.get(), &config, weights.tensors().data(), static_cast<std::int32_t>(weights.tensors().size()),
            [](void* user, std::uint64_t done, std::uint64_t total) {
                static_cast<std::vector<std::pair<std::uint64_t, std::uint64_t>>*>(user)->emplace_back(done, total);
            },
            &calls, &raw));
        const Model model(raw);
        std::uint64_t bytes_in = 0;
        std::uint64_t matrix_elements = 0;
        for (const inf_tensor& t : weights.tensors()) {
            bytes_in += t.bytes;
            if (t.dims == 2)
                matrix_elements += static_cast<std::uint64_t>(t.shape[0] * t.shape[1]);
        }
        ASSERT_FALSE(calls.empty());
        EXPECT_EQ(calls.back().first, bytes_in);
        for (std::size_t i = 0; i < calls.size(); ++i) {
            EXPECT_EQ(calls[i].second, bytes_in);
            if (i > 0) {
                EXPECT_GE(calls[i].first, calls[i - 1].first);
            }
        }
        std::uint64_t bytes = 0;
        ASSERT_OK(inf_model_bytes(model.get(), &bytes));
        // Matrices as f32 (all-F32 model) or bf16, plus the f32 norms and the RoPE table.
        const std::uint64_t per = type == INF_TENSOR_TYPE_F32 ? 4 : 2;
        EXPECT_GE(bytes, matrix_elements * per);
        EXPECT_LT(bytes, matrix_elements * per + (std::uint64_t{1} << 20));
    }
}

TEST_F(ModelCuda, RefusesWhatItDoesNotRunNamingIt) {
    const inf_model_config config = cuda_config(16, INF_ROPE_STYLE_HALF);
    const RandomWeights weights(config, INF_TENSOR_TYPE_F32, 301);
    const auto gpu = make_device(INF_DEVICE_KIND_CUDA);
    const auto cpu = make_device(INF_DEVICE_KIND_CPU);
    ASSERT_NE(gpu, nullptr);
    const auto model = make_model(gpu.get(), config, weights);
    ASSERT_NE(model, nullptr);
    const inf_page_pool_config pc =
        pool_config(INF_DTYPE_F32, config.layers, config.kv_heads, config.head_dim, 16, 4, 16);
    const auto cpu_pool = make_pool(cpu.get(), pc);
    const auto pool = make_pool(gpu.get(), pc);
    ASSERT_NE(pool, nullptr);
    const std::vector<std::vector<std::int32_t>> tokens{random_tokens(8, config.vocab_size, 302)};
    const std::vector<std::vector<std::int32_t>> tables{{2, 0}};
    StepLogits run;

    EXPECT_STATUS(INF_STATUS_DEVICE_MISMATCH,
                  run_parts(model.get(), cpu_pool.get(), tokens, tables, 16, {{0, 0, 8}}, config.vocab_size, run));
    EXPECT_NE(std::string(inf_last_error()).find("cuda:0"), std::string::npos) << inf_last_error();

    const std::int32_t token = 3;
    const std::int32_t position = 0;
    const std::int32_t q_starts[2] = {0, 1};
    const std::int32_t kv_length = 1;
    const std::int32_t page_starts[2] = {0, 1};
    const std::int32_t page_id = 1;
    std::vector<float> logits(static_cast<std::size_t>(config.vocab_size), std::numeric_limits<float>::quiet_NaN());
    inf_step_plan plan{};
    plan.size = sizeof plan;
    plan.sequences = 1;
    plan.tokens = 1;
    plan.token_ids = &token;
    plan.positions = &position;
    plan.q_starts = q_starts;
    plan.kv_lengths = &kv_length;
    plan.page_starts = page_starts;
    plan.page_ids = &page_id;
    inf_sparse_step sparse{};
    sparse.size = sizeof sparse;
    plan.sparse = &sparse;
    EXPECT_STATUS(INF_STATUS_UNSUPPORTED, inf_model_step(model.get(), pool.get(), &plan, logits.data()));
    EXPECT_NE(std::string(inf_last_error()).find("plan->sparse"), std::string::npos) << inf_last_error();
    EXPECT_NE(std::string(inf_last_error()).find("cuda:0"), std::string::npos) << inf_last_error();
    plan.sparse = nullptr;
    inf_step_exchange exchange{};
    exchange.size = sizeof exchange;
    plan.exchange = &exchange;
    EXPECT_STATUS(INF_STATUS_UNSUPPORTED, inf_model_step(model.get(), pool.get(), &plan, logits.data()));
    EXPECT_NE(std::string(inf_last_error()).find("plan->exchange"), std::string::npos) << inf_last_error();
    plan.exchange = nullptr;
    const std::int32_t bad_token = config.vocab_size;
    plan.token_ids = &bad_token;
    EXPECT_STATUS(INF_STATUS_OUT_OF_RANGE, inf_model_step(model.get(), pool.get(), &plan, logits.data()));
    EXPECT_NE(std::string(inf_last_error()).find("plan->token_ids[0]"), std::string::npos) << inf_last_error();
    plan.token_ids = &token;
    // The refusals left nothing behind: a good step still runs.
    plan.logit_rows = 1;
    const std::int32_t logit_token = 0;
    plan.logit_tokens = &logit_token;
    EXPECT_OK(inf_model_step(model.get(), pool.get(), &plan, logits.data()));
    EXPECT_TRUE(std::none_of(logits.begin(), logits.end(), [](float v) { return std::isnan(v); }));

    // head_dim the CUDA attention kernels do not take: refused at creation, naming the field.
    inf_model_config odd = cuda_config(16, INF_ROPE_STYLE_HALF);
    odd.head_dim = 12;
    const RandomWeights odd_weights(odd, INF_TENSOR_TYPE_F32, 303);
    inf_model* raw = nullptr;
    EXPECT_STATUS(INF_STATUS_UNSUPPORTED,
                  inf_model_create(gpu.get(), &odd, odd_weights.tensors().data(),
                                   static_cast<std::int32_t>(odd_weights.tensors().size()), nullptr, nullptr, &raw));
    EXPECT_EQ(raw, nullptr);
    EXPECT_NE(std::string(inf_last_error()).find("config->head_dim"), std::string::npos) << inf_last_error();
}

namespace {

// Greedy generation of every sequence for `steps` decode steps after one prefill step that holds all prompts;
// each step's logits are only the sequences' last rows, and each device feeds back its own argmax.
std::vector<std::vector<std::int32_t>> greedy(inf_model* model, inf_page_pool* pool,
                                              const std::vector<std::vector<std::int32_t>>& prompts,
                                              const std::vector<std::vector<std::int32_t>>& tables,
                                              std::int32_t page_size, std::int32_t vocab, int steps) {
    std::vector<std::vector<std::int32_t>> text = prompts;
    std::vector<std::vector<std::int32_t>> generated(prompts.size());
    for (int step = 0; step <= steps; ++step) {
        std::vector<std::int32_t> token_ids, positions, q_starts{0}, kv_lengths, page_starts{0}, page_ids, logit_tokens;
        for (std::size_t s = 0; s < text.size(); ++s) {
            const auto length = static_cast<std::int32_t>(text[s].size());
            const std::int32_t first = step == 0 ? 0 : length - 1;
            for (std::int32_t p = first; p < length; ++p) {
                token_ids.push_back(text[s][static_cast<std::size_t>(p)]);
                positions.push_back(p);
            }
            q_starts.push_back(static_cast<std::int32_t>(token_ids.size()));
            logit_tokens.push_back(q_starts.back() - 1);
            kv_lengths.push_back(length);
            page_ids.insert(page_ids.end(), tables[s].begin(),
                            tables[s].begin() + (length + page_size - 1) / page_size);
            page_starts.push_back(static_cast<std::int32_t>(page_ids.size()));
        }
        inf_step_plan plan{};
        plan.size = sizeof plan;
        plan.sequences = static_cast<std::int32_t>(text.size());
        plan.tokens = static_cast<std::int32_t>(token_ids.size());
        plan.logit_rows = plan.sequences;
        plan.token_ids = token_ids.data();
        plan.positions = positions.data();
        plan.q_starts = q_starts.data();
        plan.kv_lengths = kv_lengths.data();
        plan.page_starts = page_starts.data();
        plan.page_ids = page_ids.data();
        plan.logit_tokens = logit_tokens.data();
        std::vector<float> logits(text.size() * static_cast<std::size_t>(vocab),
                                  std::numeric_limits<float>::quiet_NaN());
        EXPECT_OK(inf_model_step(model, pool, &plan, logits.data()));
        for (std::size_t s = 0; s < text.size(); ++s) {
            const float* row = logits.data() + s * static_cast<std::size_t>(vocab);
            EXPECT_TRUE(std::none_of(row, row + vocab, [](float v) { return std::isnan(v); })) << "sequence " << s;
            const auto next = static_cast<std::int32_t>(std::max_element(row, row + vocab) - row);
            text[s].push_back(next);
            generated[s].push_back(next);
        }
    }
    return generated;
}

}  // namespace

TEST_F(ModelCuda, GreedyDecodeMatchesCpuTokenForToken) {
    const inf_model_config config = cuda_config(64, INF_ROPE_STYLE_HALF);
    const RandomWeights weights(config, INF_TENSOR_TYPE_F32, 401);
    constexpr std::int32_t kPage = 16;
    const std::vector<std::vector<std::int32_t>> prompts{random_tokens(21, config.vocab_size, 402),
                                                         random_tokens(9, config.vocab_size, 403),
                                                         random_tokens(33, config.vocab_size, 404)};
    const std::vector<std::vector<std::int32_t>> tables{{7, 1, 12, 4}, {0, 9, 3}, {2, 11, 5, 8, 10, 6}};
    const inf_page_pool_config pc =
        pool_config(INF_DTYPE_F32, config.layers, config.kv_heads, config.head_dim, kPage, 13, 0);
    std::vector<std::vector<std::vector<std::int32_t>>> outputs;
    for (const inf_device_kind kind : {INF_DEVICE_KIND_CPU, INF_DEVICE_KIND_CUDA}) {
        const auto device = make_device(kind);
        ASSERT_NE(device, nullptr);
        const auto model = make_model(device.get(), config, weights);
        const auto pool = make_pool(device.get(), pc);
        ASSERT_NE(model, nullptr);
        ASSERT_NE(pool, nullptr);
        outputs.push_back(greedy(model.get(), pool.get(), prompts, tables, kPage, config.vocab_size, 24));
    }
    EXPECT_EQ(outputs[1], outputs[0]);
}
