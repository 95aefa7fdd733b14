// Bad input to inf_model_create / inf_model_step: a status and a message naming what is wrong.
#include <cstring>
#include <limits>

#include "model_fixture.h"

using namespace model_test;
using inf_test::make_device;
using inf_test::make_pool;
using inf_test::pool_config;

namespace {

class ModelValidation : public ::testing::Test {
protected:
    inf_status create(const inf_model_config& config, const std::vector<inf_tensor>& tensors) {
        inf_model* model = reinterpret_cast<inf_model*>(std::uintptr_t{1});
        const inf_status status = inf_model_create(device_.get(), &config, tensors.data(),
                                                   static_cast<std::int32_t>(tensors.size()), nullptr, nullptr, &model);
        EXPECT_EQ(model, nullptr);
        return status;
    }

    // A valid plan: one sequence, prefill of 20 tokens over 2 pages.
    void SetUp() override {
        tokens_ = random_tokens(20, config_.vocab_size, 7);
        for (std::int32_t i = 0; i < 20; ++i) positions_.push_back(i);
        plan_.size = sizeof plan_;
        plan_.sequences = 1;
        plan_.tokens = 20;
        plan_.logit_rows = 1;
        plan_.token_ids = tokens_.data();
        plan_.positions = positions_.data();
        plan_.q_starts = q_starts_;
        plan_.kv_lengths = kv_lengths_;
        plan_.page_starts = page_starts_;
        plan_.page_ids = page_ids_;
        plan_.logit_tokens = logit_tokens_;
    }

    inf_status step(const inf_step_plan& plan) { return inf_model_step(model_.get(), pool_.get(), &plan, logits_.data()); }

    inf_model_config config_ = tiny_config();
    RandomWeights weights_{config_, INF_TENSOR_TYPE_F32, 3};
    inf_test::Device device_ = make_device();
    Model model_ = make_model(device_.get(), config_, weights_);
    inf_test::Pool pool_ = make_pool(device_.get(), pool_config(INF_DTYPE_F32, 2, 2, 16, 16, 4, 8));
    std::vector<std::int32_t> tokens_, positions_;
    std::int32_t q_starts_[2] = {0, 20};
    std::int32_t kv_lengths_[1] = {20};
    std::int32_t page_starts_[2] = {0, 2};
    std::int32_t page_ids_[2] = {3, 1};
    std::int32_t logit_tokens_[1] = {19};
    inf_step_plan plan_{};
    std::vector<float> logits_ = std::vector<float>(50, std::numeric_limits<float>::quiet_NaN());
};

}  // namespace

TEST_F(ModelValidation, ValidPlanRuns) {
    ASSERT_OK(step(plan_));
    for (float value : logits_) EXPECT_TRUE(std::isfinite(value));
}

TEST_F(ModelValidation, BadConfigValues) {
    auto bad = [&](auto change, const char* text) {
        inf_model_config c = config_;
        change(c);
        EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, text, create(c, weights_.tensors()));
    };
    bad([](inf_model_config& c) { c.dim = 0; }, "config->dim (0) must be positive");
    bad([](inf_model_config& c) { c.vocab_size = -3; }, "config->vocab_size (-3)");
    bad([](inf_model_config& c) { c.kv_heads = 3; }, "config->kv_heads (3) does not divide config->q_heads (4)");
    bad([](inf_model_config& c) { c.head_dim = 15; }, "config->head_dim (15) must be even");
    bad([](inf_model_config& c) { c.ffn_dim = 0; }, "config->ffn_dim");
    bad([](inf_model_config& c) { c.norm_eps = 0.0F; }, "config->norm_eps");
    bad([](inf_model_config& c) { c.rope_theta = -1.0F; }, "config->rope_theta");
    bad([](inf_model_config& c) { const std::int32_t raw = 5; std::memcpy(&c.rope_style, &raw, 4); }, "config->rope_style (5)");
    bad([](inf_model_config& c) { const std::int32_t raw = 9; std::memcpy(&c.rope_scaling, &raw, 4); }, "config->rope_scaling (9)");
    bad([](inf_model_config& c) {
        c.rope_scaling = INF_ROPE_SCALING_LLAMA3;
        c.rope_high_freq_factor = 0.5F;
    }, "config->rope_high_freq_factor (0.5) must exceed");
    inf_model_config small = config_;
    small.size = 4;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "config->size (4)", create(small, weights_.tensors()));
}

TEST_F(ModelValidation, TensorsMissingExtraOrMisshapen) {
    std::vector<inf_tensor> missing = weights_.tensors();
    missing.erase(missing.begin() + static_cast<std::ptrdiff_t>(weights_.index_of("blk.1.ffn_up.weight")));
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "tensor blk.1.ffn_up.weight is missing", create(config_, missing));

    std::vector<inf_tensor> extra = weights_.tensors();
    inf_tensor stray = extra[0];
    stray.name = "blk.2.attn_q.weight";
    extra.push_back(stray);
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "(blk.2.attn_q.weight) is not a tensor of this model", create(config_, extra));

    std::vector<inf_tensor> twice = weights_.tensors();
    twice.push_back(twice[3]);
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "appears twice", create(config_, twice));

    inf_tensor k = weights_.tensors()[weights_.index_of("blk.1.attn_k.weight")];
    k.shape[0] = 64;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "blk.1.attn_k.weight has shape [64, 64], expected [32, 64]",
                 create(config_, weights_.tensors_with("blk.1.attn_k.weight", k)));

    inf_tensor norm = weights_.tensors()[weights_.index_of("output_norm.weight")];
    norm.bytes -= 4;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "output_norm.weight has 252 bytes, but shape [64] of type F32 takes 256",
                 create(config_, weights_.tensors_with("output_norm.weight", norm)));

    inf_tensor q8 = weights_.tensors()[weights_.index_of("blk.0.ffn_down.weight")];
    q8.type = INF_TENSOR_TYPE_Q8_0;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "blk.0.ffn_down.weight has 24576 bytes, but shape [64, 96] of type Q8_0 takes 6528",
                 create(config_, weights_.tensors_with("blk.0.ffn_down.weight", q8)));

    inf_tensor no_data = weights_.tensors()[0];
    no_data.data = nullptr;
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "token_embd.weight (tensors[0]) has null data",
                 create(config_, weights_.tensors_with("token_embd.weight", no_data)));

    inf_model_config tied = config_;
    tied.tied_embeddings = 1;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "(output.weight) is not a tensor of this model", create(tied, weights_.tensors()));
}

TEST_F(ModelValidation, PoolMustMatchTheModel) {
    const auto other = make_pool(device_.get(), pool_config(INF_DTYPE_F32, 2, 2, 32, 16, 4, 0));
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "pool has layers 2, kv_heads 2, head_dim 32 but the model has layers 2, kv_heads 2, head_dim 16",
                 inf_model_step(model_.get(), other.get(), &plan_, logits_.data()));
    EXPECT_ERROR(INF_STATUS_INVALID_HANDLE, "pool", inf_model_step(model_.get(), reinterpret_cast<inf_page_pool*>(model_.get()),
                                                                   &plan_, logits_.data()));
}

TEST_F(ModelValidation, PlanArraysMustAgree) {
    inf_step_plan p = plan_;
    positions_[7] = 9;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "plan->positions[7] (9) does not follow plan->positions[6] (6)", step(p));
    positions_[7] = 7;
    kv_lengths_[0] = 21;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "must be plan->kv_lengths[0] - 1 (20)", step(p));
    kv_lengths_[0] = 20;
    page_starts_[1] = 1;
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "sequence 0 has 1 page (16 keys) but plan->kv_lengths[0] is 20", step(p));
    page_starts_[1] = 2;
    page_ids_[1] = 4;
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "plan->page_ids[1] (4) is out of range: the pool has 4 pages", step(p));
    page_ids_[1] = 1;
    logit_tokens_[0] = 20;
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "plan->logit_tokens[0] (20) is out of range", step(p));
    logit_tokens_[0] = 19;
    tokens_[4] = 50;
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "plan->token_ids[4] (50) is out of range: the vocabulary has 50 tokens", step(p));
    tokens_[4] = 1;
    p.tokens = 19;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "plan->q_starts[1] (20) must equal plan->tokens (19)", step(p));
    p = plan_;
    p.page_ids = nullptr;
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "plan->page_ids is null", step(p));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "logits is null", inf_model_step(model_.get(), pool_.get(), &plan_, nullptr));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "plan is null", inf_model_step(model_.get(), pool_.get(), nullptr, logits_.data()));
    // Nothing ran: the valid plan still works afterwards.
    EXPECT_OK(step(plan_));
}

TEST_F(ModelValidation, SparseFields) {
    inf_step_plan p = plan_;
    inf_sparse_step sparse{};
    sparse.size = sizeof sparse;
    p.sparse = &sparse;
    std::int32_t flags[4] = {0, 2, 0, 0};
    sparse.streaming_heads = flags;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "plan->sparse->streaming_heads[1] (layer 0, KV head 1) is 2", step(p));
    flags[1] = 1;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "plan->sparse->decode_local_tokens (0) must be >= 1", step(p));
    sparse.decode_local_tokens = 4;
    sparse.prefill_local_tokens = 4;
    sparse.budget_tokens = 8;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "plan->sparse->budget_tokens (8) must be 0 (no selection) or at least one page (16)",
                 step(p));

    // A decode at position 20 with budget 16 selects: slot_ints too small, then a stale stored slot.
    const std::int32_t token = 3;
    const std::int32_t position = 20;
    std::int32_t q_starts[2] = {0, 1};
    std::int32_t kv_lengths[1] = {21};
    std::int32_t logit_tokens[1] = {0};
    p.tokens = 1;
    p.token_ids = &token;
    p.positions = &position;
    p.q_starts = q_starts;
    p.kv_lengths = kv_lengths;
    p.logit_tokens = logit_tokens;
    sparse.budget_tokens = 16;
    std::vector<std::int32_t> store(64, 0);
    std::int32_t slot = 0;
    std::int32_t reselect = 0;
    sparse.selection_store = store.data();
    sparse.selection_slots = &slot;
    sparse.reselect = &reselect;
    sparse.slot_ints = 7;
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "plan->sparse->slot_ints (7) is too small: a slot needs 8 ints", step(p));
    sparse.slot_ints = 8;
    for (int list = 0; list < 4; ++list) {
        store[static_cast<std::size_t>(list * 2)] = 1;
        store[static_cast<std::size_t>(list * 2 + 1)] = list == 3 ? 2 : 1;
    }
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "slot 0 (sequence 0), layer 1, list 1: entry 2 is out of range", step(p));
    const auto flat = make_pool(device_.get(), pool_config(INF_DTYPE_F32, 2, 2, 16, 16, 4, 0));
    reselect = 1;
    EXPECT_ERROR(INF_STATUS_UNSUPPORTED, "pool keeps no summaries", inf_model_step(model_.get(), flat.get(), &p, logits_.data()));
}

TEST(ModelCreate, HandlesAndDevices) {
    std::uint64_t bytes = 0;
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "model is null", inf_model_bytes(nullptr, &bytes));
    EXPECT_ERROR(INF_STATUS_INVALID_HANDLE, "model", inf_model_bytes(reinterpret_cast<inf_model*>(std::uintptr_t{0x7000000000000014}), &bytes));
    EXPECT_OK(inf_model_destroy(nullptr));
    const auto device = make_device();
    const inf_model_config config = tiny_config();
    const RandomWeights weights(config, INF_TENSOR_TYPE_F32, 5);
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "out_model is null",
                 inf_model_create(device.get(), &config, weights.tensors().data(),
                                  static_cast<std::int32_t>(weights.tensors().size()), nullptr, nullptr, nullptr));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "tensors is null",
                 [&] { inf_model* m = nullptr; return inf_model_create(device.get(), &config, nullptr, 3, nullptr, nullptr, &m); }());
    inf_model* stale = nullptr;
    {
        const auto model = make_model(device.get(), config, weights);
        stale = model.get();
        EXPECT_OK(inf_model_bytes(stale, &bytes));
    }
    EXPECT_ERROR(INF_STATUS_INVALID_HANDLE, "is not a live model handle", inf_model_bytes(stale, &bytes));
    EXPECT_ERROR(INF_STATUS_INVALID_HANDLE, "is a device handle, not a model handle",
                 inf_model_bytes(reinterpret_cast<inf_model*>(device.get()), &bytes));
}
