// The weights of a Llama-family model as float32 row-major matrices ([out][in] for linear layers).
//
// Built from the caller's inf_tensor list: every tensor the config needs must be there exactly once with
// its expected shape and byte count (the first one that disagrees is named in the error). F32 tensors are
// used in place (the caller keeps them alive); F16 / BF16 / Q8_0 ones, and F32 ones whose address is not
// float-aligned, are converted into memory the weights own.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "infinite/infinite.h"

namespace inf {

struct LayerWeights {
    const float* attn_norm = nullptr;  // [dim]
    const float* wq = nullptr;         // [q_heads * head_dim][dim]
    const float* wk = nullptr;         // [kv_heads * head_dim][dim]
    const float* wv = nullptr;         // [kv_heads * head_dim][dim]
    const float* wo = nullptr;         // [dim][q_heads * head_dim]
    const float* ffn_norm = nullptr;   // [dim]
    const float* gate = nullptr;       // [ffn_dim][dim]
    const float* up = nullptr;         // [ffn_dim][dim]
    const float* down = nullptr;       // [dim][ffn_dim]
};

// One tensor of the config's list, checked (shape, type, byte count, data), in the model's order:
// token_embd, output_norm, output (unless tied), then per layer attn_norm, attn_q, attn_k, attn_v,
// attn_output, ffn_norm, ffn_gate, ffn_up, ffn_down.
struct MatchedTensor {
    std::string name;
    inf_tensor tensor{};
    std::uint64_t elements = 0;
};

// Matches tensors to the config's names and checks each (the errors ModelWeights reports), converting
// nothing: for backends that convert and upload tensor by tensor (model/cuda_llama_model.h).
std::vector<MatchedTensor> match_tensors(const inf_model_config& config, const inf_tensor* tensors,
                                         std::int32_t tensor_count);

class ModelWeights {
public:
    // Validates tensors against config (valid already) and prepares them, calling progress (may be
    // null) after each piece of work and once more with done == total.
    ModelWeights(const inf_model_config& config, const inf_tensor* tensors, std::int32_t tensor_count,
                 inf_progress_callback progress, void* user_data);

    const float* token_embedding() const noexcept { return token_embd_; }  // [vocab][dim]
    const float* output_norm() const noexcept { return output_norm_; }      // [dim]
    const float* lm_head() const noexcept { return lm_head_; }              // [vocab][dim]
    const LayerWeights& layer(std::int32_t index) const noexcept { return layers_[static_cast<std::size_t>(index)]; }
    // Bytes of converted copies the weights own.
    std::uint64_t owned_bytes() const noexcept { return owned_bytes_; }

private:
    std::vector<LayerWeights> layers_;
    const float* token_embd_ = nullptr;
    const float* output_norm_ = nullptr;
    const float* lm_head_ = nullptr;
    std::vector<std::unique_ptr<float[]>> owned_;
    std::uint64_t owned_bytes_ = 0;
};

}  // namespace inf
