// The object behind inf_model: a model on one device, run by LlamaModel (CPU: the core runs every layer)
// or CudaLlamaModel (CUDA: the plug-in runs the step). Exactly one of the two is set.
#pragma once

#include <cstdint>
#include <memory>

#include "model/cuda_llama_model.h"
#include "model/llama_model.h"

namespace inf {

struct ModelHandle {
    std::unique_ptr<LlamaModel> cpu;
    std::unique_ptr<CudaLlamaModel> cuda;

    const Device& device() const noexcept { return cpu ? cpu->device() : cuda->device(); }
    const inf_model_config& config() const noexcept { return cpu ? cpu->config() : cuda->config(); }
    std::uint64_t bytes() const noexcept { return cpu ? cpu->bytes() : cuda->bytes(); }
};

}  // namespace inf
