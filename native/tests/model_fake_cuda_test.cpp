// The core's side of the CUDA model step on the fake CUDA plug-in of the "fake" scenario (see
// plugin_test.cpp), which has no model step: inf_model_create checks the config and the tensors as on any
// device, then refuses with INF_STATUS_UNSUPPORTED naming the step, the device and the plug-in, before it
// uploads (or allocates) anything. The real step runs in model_cuda_test.cpp on a GPU.
#include <dlfcn.h>

#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>

#include "fake_cuda_fixture.h"
#include "model_fixture.h"

using model_test::RandomWeights;
using model_test::tiny_config;

namespace {

class FakeCudaModel : public FakeCudaTest {
protected:
    FakeCudaModel() : FakeCudaTest("fake") {}
};

bool contains(const std::string& text, const char* part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_F(FakeCudaModel, CreateIsRefusedNamingTheDeviceBeforeAnyUpload) {
    const auto gpu = inf_test::make_device(INF_DEVICE_KIND_CUDA, 1);
    ASSERT_NE(gpu, nullptr);
    const inf_model_config config = tiny_config();
    const RandomWeights weights(config, INF_TENSOR_TYPE_BF16, 5);
    inf_model* model = reinterpret_cast<inf_model*>(std::uintptr_t{1});  // must come back null
    EXPECT_STATUS(INF_STATUS_UNSUPPORTED,
                  inf_model_create(gpu.get(), &config, weights.tensors().data(),
                                   static_cast<std::int32_t>(weights.tensors().size()), nullptr, nullptr, &model));
    EXPECT_EQ(model, nullptr);
    const std::string message = inf_last_error();
    EXPECT_TRUE(contains(message, "model forward step")) << message;
    EXPECT_TRUE(contains(message, "cuda:1")) << message;
    EXPECT_TRUE(contains(message, "fake CUDA plug-in for tests")) << message;
    const inf_fake_cuda_stats_t stats = fake_stats();
    EXPECT_EQ(stats.bytes_used[1], 0U) << "weights were uploaded before the refusal";
}

TEST_F(FakeCudaModel, ConfigAndTensorsAreCheckedFirst) {
    const auto gpu = inf_test::make_device(INF_DEVICE_KIND_CUDA, 0);
    ASSERT_NE(gpu, nullptr);
    inf_model_config config = tiny_config();
    const RandomWeights weights(config, INF_TENSOR_TYPE_F32, 6);
    inf_model* model = nullptr;
    // A tensor of the wrong shape is named, as on the CPU.
    inf_tensor wrong = weights.tensors()[weights.index_of("blk.1.ffn_up.weight")];
    wrong.shape[0] += 1;
    const std::vector<inf_tensor> tensors = weights.tensors_with("blk.1.ffn_up.weight", wrong);
    EXPECT_STATUS(INF_STATUS_INVALID_ARGUMENT,
                  inf_model_create(gpu.get(), &config, tensors.data(), static_cast<std::int32_t>(tensors.size()),
                                   nullptr, nullptr, &model));
    EXPECT_TRUE(contains(inf_last_error(), "blk.1.ffn_up.weight")) << inf_last_error();
    // A head_dim the CUDA attention kernels do not take.
    config.head_dim = 12;
    const RandomWeights odd(config, INF_TENSOR_TYPE_F32, 7);
    EXPECT_STATUS(INF_STATUS_UNSUPPORTED,
                  inf_model_create(gpu.get(), &config, odd.tensors().data(),
                                   static_cast<std::int32_t>(odd.tensors().size()), nullptr, nullptr, &model));
    EXPECT_TRUE(contains(inf_last_error(), "config->head_dim (12)")) << inf_last_error();
    EXPECT_TRUE(contains(inf_last_error(), "cuda:0")) << inf_last_error();
    EXPECT_EQ(model, nullptr);
}

// ---- The "fake_model" scenario: the fake plug-in runs a host model step (fake_cuda_model_step.h) ----
//
// The fake reads the step's description exactly as plugin_model_abi.h documents it and checks every device
// range the core passes; so equal logits to the CPU step show that the core uploads the weights in the
// layout the ABI promises (fused Q/K/V and gate/up, f32 norms, f32 or bf16 matrices, the RoPE table), packs
// the plan's arrays, token pages and slots, sizes the workspace and frees it all. The CUDA kernels are not
// in this picture: model_cuda_test.cpp checks them on a GPU.

namespace {

class FakeCudaModelStep : public FakeCudaTest {
protected:
    FakeCudaModelStep() : FakeCudaTest("fake_model") {}
};

// Steps of three sequences: prefill chunks and decodes mixed, ragged, partly filled last pages.
struct Script {
    std::vector<std::vector<std::int32_t>> tokens;
    std::vector<std::vector<std::int32_t>> tables;
    std::vector<std::vector<model_test::SequenceStep>> steps;
};

Script script(const inf_model_config& config, std::int32_t page_size, std::uint32_t seed) {
    Script s;
    const std::int32_t per_sequence = (48 + page_size - 1) / page_size;
    for (int q = 0; q < 3; ++q) {
        s.tokens.push_back(model_test::random_tokens(48, config.vocab_size, seed + static_cast<std::uint32_t>(q)));
        std::vector<std::int32_t> table;
        for (std::int32_t j = 0; j < per_sequence; ++j)
            table.push_back((j * 3 + q) % (3 * per_sequence));  // interleaved
        s.tables.push_back(table);
    }
    const auto part = [&](int q, std::int32_t first, std::int32_t count) {
        model_test::SequenceStep step;
        const auto& all = s.tokens[static_cast<std::size_t>(q)];
        step.tokens.assign(all.begin() + first, all.begin() + first + count);
        step.first_position = first;
        const auto& table = s.tables[static_cast<std::size_t>(q)];
        step.pages.assign(table.begin(), table.begin() + (first + count + page_size - 1) / page_size);
        return step;
    };
    s.steps = {{part(0, 0, 19), part(1, 0, 7)},
               {part(0, 19, 1), part(1, 7, 23), part(2, 0, 3)},
               {part(2, 3, 1), part(0, 20, 1), part(1, 30, 1)},
               {part(1, 31, 1), part(2, 4, 12), part(0, 21, 1)}};
    return s;
}

// tolerance: 1e-5 where both sides compute from the same weight values (F32, and BF16 which both decode
// exactly); F16 / Q8_0 reach the device rounded to bf16, the CPU keeps them exact.
void compare_with_cpu(inf_tensor_type type, std::int32_t page_size, std::uint32_t seed, double tolerance) {
    SCOPED_TRACE(testing::Message() << "weights " << type << " page_size " << page_size);
    const inf_model_config config =
        tiny_config(seed % 2 == 0 ? INF_ROPE_STYLE_HALF : INF_ROPE_STYLE_INTERLEAVED, INF_ROPE_SCALING_LLAMA3);
    const RandomWeights weights(config, type, seed);
    const auto cpu = inf_test::make_device(INF_DEVICE_KIND_CPU);
    const auto gpu = inf_test::make_device(INF_DEVICE_KIND_CUDA, 1);
    const auto cpu_model = model_test::make_model(cpu.get(), config, weights);
    const auto gpu_model = model_test::make_model(gpu.get(), config, weights);
    ASSERT_NE(cpu_model, nullptr);
    ASSERT_NE(gpu_model, nullptr);
    std::uint64_t bytes = 0;
    ASSERT_OK(inf_model_bytes(gpu_model.get(), &bytes));
    EXPECT_GT(bytes, 0U);
    EXPECT_GE(fake_stats().bytes_used[1], bytes) << "inf_model_bytes counts more than the device holds";
    const Script s = script(config, page_size, seed + 10);
    const std::int32_t pages = 3 * ((48 + page_size - 1) / page_size);
    const inf_page_pool_config pc =
        inf_test::pool_config(INF_DTYPE_F32, config.layers, config.kv_heads, config.head_dim, page_size, pages, 0);
    const auto cpu_pool = inf_test::make_pool(cpu.get(), pc);
    const auto gpu_pool = inf_test::make_pool(gpu.get(), pc);
    ASSERT_NE(gpu_pool, nullptr);
    for (std::size_t step = 0; step < s.steps.size(); ++step) {
        SCOPED_TRACE(testing::Message() << "step " << step);
        std::vector<float> expected;
        std::vector<float> actual;
        ASSERT_OK(
            model_test::run_step(cpu_model.get(), cpu_pool.get(), s.steps[step], nullptr, expected, config.vocab_size));
        ASSERT_OK(
            model_test::run_step(gpu_model.get(), gpu_pool.get(), s.steps[step], nullptr, actual, config.vocab_size));
        EXPECT_LT(model_test::relative_error(actual, expected), tolerance);
    }
    // A decode of sequence 0 (22 tokens so far) whose table lists its second page only, with page_positions:
    // the token's keys start at position page_size, the first page's keys are not visible.
    const std::int32_t token = s.tokens[0][22];
    const std::int32_t position = 22;
    const std::int32_t q_starts[2] = {0, 1};
    const std::int32_t kv_length = 23;
    const std::int32_t page_starts[2] = {0, 1};
    const std::int32_t page_id = s.tables[0][static_cast<std::size_t>(22 / page_size)];
    const std::int32_t page_position = 22 / page_size * page_size;
    const std::int32_t logit_token = 0;
    inf_step_plan plan{};
    plan.size = sizeof plan;
    plan.sequences = 1;
    plan.tokens = 1;
    plan.logit_rows = 1;
    plan.token_ids = &token;
    plan.positions = &position;
    plan.q_starts = q_starts;
    plan.kv_lengths = &kv_length;
    plan.page_starts = page_starts;
    plan.page_ids = &page_id;
    plan.page_positions = &page_position;
    plan.logit_tokens = &logit_token;
    std::vector<float> expected(static_cast<std::size_t>(config.vocab_size), std::numeric_limits<float>::quiet_NaN());
    std::vector<float> actual = expected;
    ASSERT_OK(inf_model_step(cpu_model.get(), cpu_pool.get(), &plan, expected.data()));
    ASSERT_OK(inf_model_step(gpu_model.get(), gpu_pool.get(), &plan, actual.data()));
    EXPECT_LT(model_test::relative_error(actual, expected), tolerance);
}

}  // namespace

TEST_F(FakeCudaModelStep, CoreSideMatchesTheCpuStep) {
    compare_with_cpu(INF_TENSOR_TYPE_F32, 16, 41, 1e-5);
    compare_with_cpu(INF_TENSOR_TYPE_BF16, 32, 42, 1e-5);
    compare_with_cpu(INF_TENSOR_TYPE_Q8_0, 16, 43, 3e-2);
}
