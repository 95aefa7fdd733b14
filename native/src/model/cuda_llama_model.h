// A Llama-family model on a CUDA device: the weights uploaded once at creation, and the dense forward step
// run by the plug-in (plugin_model_abi.h), with the same plan and logits contract as LlamaModel.
//
// Weights live on the device as bfloat16, or as float32 when every weight tensor given is F32 (so a float32
// model keeps float32 accuracy); norm weights are float32. F16 / Q8_0 / F32 tensors are converted on the
// host piece by piece while uploading (never the whole model at once). Q/K/V and gate/up are stored as one
// matrix each (one GEMM). Sparse and distributed steps are refused (model_api.cpp).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "core/device.h"
#include "core/plugin_model_abi.h"
#include "infinite/infinite.h"
#include "kv/page_pool.h"
#include "model/step_checks.h"

namespace inf {

class CudaLlamaModel {
public:
    // config must be valid (validate_model_config); the tensors are checked here. Throws UNSUPPORTED naming
    // the device before any upload when its backend has no model step.
    CudaLlamaModel(std::shared_ptr<Device> device, const inf_model_config& config, const inf_tensor* tensors,
                   std::int32_t tensor_count, inf_progress_callback progress, void* user_data);

    const Device& device() const noexcept { return *device_; }
    const inf_model_config& config() const noexcept { return config_; }
    // Device bytes of the weights (and the RoPE table).
    std::uint64_t bytes() const noexcept { return bytes_; }

    // One dense step; plan and shape come from check_step. logits: host [logit_rows][vocab_size].
    void step(PagePool& pool, const inf_step_plan& plan, const StepShape& shape, float* logits) const;

private:
    struct Layer {
        DeviceMemory attn_norm, wqkv, wo, ffn_norm, gate_up, down;
    };

    std::shared_ptr<Device> device_;
    inf_model_config config_;
    inf_dtype dtype_ = INF_DTYPE_BF16;  // of the matrices and the embedding
    DeviceMemory embedding_, output_norm_, lm_head_, inv_freq_;
    std::vector<Layer> layers_;
    std::uint64_t bytes_ = 0;

    // Steps run one at a time (they share the device's one stream anyway); these grow to the largest step.
    mutable std::mutex step_mutex_;
    mutable std::vector<std::int32_t> host_ints_;
    mutable std::vector<inf_plugin_model_layer> host_layers_;
    mutable DeviceMemory ints_;
    mutable DeviceMemory workspace_;
};

}  // namespace inf
