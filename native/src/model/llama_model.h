// The object behind inf_model: a Llama-family model's weights on one device and its forward step.
//
// A step runs the whole batch (prefill chunks and decodes mixed) layer by layer: RMSNorm, Q/K/V
// projections (BLAS), RoPE, K/V appended to the page pool, one MicroAttention call per layer through the
// backend (two for a sparse step that mixes decode rows and prefill chunks, which use different Λ
// windows), output projection + residual, RMSNorm, SwiGLU MLP + residual; the final norm and LM head run
// only for the logit rows. GEMMs use OpenBLAS's own threads; elementwise kernels and attention use the
// library's thread pool; the two never nest. A distributed step (plan.exchange) wraps each layer's local
// attention in the exchange of model/step_exchange.h: queries out before it, served parts and the merge of
// the peers' partial results after it. A distributed sparse step applies the Λ mask on every instance and, for
// decodes that select pages, takes the global top-k at the home from every instance's page scores (the
// creditors receive the queries and send their scores before the home's selection and local attention). A step
// with plan.sparse->ring keeps streaming heads in per-sequence rings of another pool (model/ring_attention.cpp):
// each layer's heads are split by role, attended over their own pool, and merged back in query-head order.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "core/device.h"
#include "infinite/infinite.h"
#include "kv/page_pool.h"
#include "model/model_weights.h"
#include "model/step_checks.h"
#include "model/step_profile.h"
#include "model/step_workspace.h"

namespace inf {

class StepExchange;

class LlamaModel {
public:
    // config must be valid (validate_model_config); the tensors are checked here.
    LlamaModel(std::shared_ptr<Device> device, const inf_model_config& config, const inf_tensor* tensors,
               std::int32_t tensor_count, inf_progress_callback progress, void* user_data);
    ~LlamaModel();
    LlamaModel(const LlamaModel&) = delete;
    LlamaModel& operator=(const LlamaModel&) = delete;

    const Device& device() const noexcept { return *device_; }
    const inf_model_config& config() const noexcept { return config_; }
    std::uint64_t bytes() const noexcept { return weights_.owned_bytes(); }

    // One step; plan and shape come from check_step. logits: [logit_rows][vocab_size].
    void step(PagePool& pool, const inf_step_plan& plan, const StepShape& shape, float* logits) const;

private:
    struct Lease;
    // The query and KV heads one attention call of a layer covers: all of them, or (a ring step) the
    // retrieval heads, compacted (retrieval head i owns query heads i*G .. i*G+G-1 of q, o and lse).
    struct HeadView {
        std::int32_t q_heads = 0;
        std::int32_t kv_heads = 0;
        const float* q = nullptr;  // [tokens][q_heads][head_dim]
        float* o = nullptr;        // [tokens][q_heads][head_dim]
        float* lse = nullptr;      // [tokens][q_heads]
        const std::int32_t* streaming = nullptr;  // the layer's [kv_heads] Λ flags, or null (none streaming)
    };
    void prepare_groups(StepWorkspace& ws, const PagePool& pool, const inf_step_plan& plan, const StepShape& shape) const;
    void prepare_selection(StepWorkspace& ws, std::int32_t page_size, const inf_step_plan& plan,
                           const StepShape& shape) const;
    // exchange: a distributed step's (the selection is then global), or null.
    void select_pages(StepWorkspace& ws, const PagePool& pool, std::int32_t layer, const StepShape& shape,
                      StepExchange* exchange, const HeadView& view) const;
    void attend(StepWorkspace& ws, AttentionGroup& group, const PagePool& pool, std::int32_t layer,
                const inf_step_plan& plan, const StepShape& shape, const HeadView& view) const;
    // A ring step's layer (model/ring_attention.cpp): appends the K and V rows of the retrieval heads to pool
    // and of the streaming heads to their ring entries, attends each set over its pool and writes ws.attn.
    void attend_ring(StepWorkspace& ws, PagePool& pool, std::int32_t layer, const inf_step_plan& plan,
                     const StepShape& shape) const;

    std::shared_ptr<Device> device_;
    inf_model_config config_;
    ModelWeights weights_;
    std::vector<double> inv_freq_;
    mutable StepProfile profile_;

    mutable std::mutex workspace_mutex_;
    mutable std::vector<std::unique_ptr<StepWorkspace>> free_workspaces_;
};

}  // namespace inf
