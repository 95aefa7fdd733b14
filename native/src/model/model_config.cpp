#include "model/model_config.h"

#include <cmath>

#include "core/status.h"

namespace inf {

namespace {

void require_positive(std::int32_t value, const char* field) {
    if (value <= 0) {
        fail(INF_STATUS_INVALID_ARGUMENT, "config->", field, " (", value, ") must be positive");
    }
}

void require_positive(float value, const char* field) {
    if (!std::isfinite(value) || value <= 0.0F) {
        fail(INF_STATUS_INVALID_ARGUMENT, "config->", field, " (", value, ") must be finite and positive");
    }
}

}  // namespace

void validate_model_config(const inf_model_config& c) {
    require_positive(c.vocab_size, "vocab_size");
    require_positive(c.dim, "dim");
    require_positive(c.layers, "layers");
    require_positive(c.q_heads, "q_heads");
    require_positive(c.kv_heads, "kv_heads");
    require_positive(c.head_dim, "head_dim");
    require_positive(c.ffn_dim, "ffn_dim");
    if (c.q_heads % c.kv_heads != 0) {
        fail(INF_STATUS_INVALID_ARGUMENT, "config->kv_heads (", c.kv_heads, ") does not divide config->q_heads (",
             c.q_heads, "): grouped-query attention needs q_heads to be a multiple of kv_heads");
    }
    if (c.head_dim % 2 != 0) {
        fail(INF_STATUS_INVALID_ARGUMENT, "config->head_dim (", c.head_dim, ") must be even: RoPE rotates pairs");
    }
    // Projection widths and the widest activation row must fit int32 (BLAS and the kernels index with it).
    if (q_width(c) > INT32_MAX || kv_width(c) > INT32_MAX) {
        fail(INF_STATUS_INVALID_ARGUMENT, "config->q_heads * config->head_dim (", q_width(c), ") overflows int32");
    }
    if (c.tied_embeddings != 0 && c.tied_embeddings != 1) {
        fail(INF_STATUS_INVALID_ARGUMENT, "config->tied_embeddings (", c.tied_embeddings, ") must be 0 or 1");
    }
    require_positive(c.norm_eps, "norm_eps");
    require_positive(c.rope_theta, "rope_theta");
    const std::int32_t style = raw_enum(c.rope_style);
    if (style != INF_ROPE_STYLE_INTERLEAVED && style != INF_ROPE_STYLE_HALF) {
        fail(INF_STATUS_INVALID_ARGUMENT, "config->rope_style (", style,
             ") is not an inf_rope_style (INTERLEAVED = 0, HALF = 1)");
    }
    const std::int32_t scaling = raw_enum(c.rope_scaling);
    if (scaling != INF_ROPE_SCALING_NONE && scaling != INF_ROPE_SCALING_LINEAR && scaling != INF_ROPE_SCALING_LLAMA3) {
        fail(INF_STATUS_INVALID_ARGUMENT, "config->rope_scaling (", scaling,
             ") is not an inf_rope_scaling (NONE = 0, LINEAR = 1, LLAMA3 = 2)");
    }
    if (scaling != INF_ROPE_SCALING_NONE) {
        require_positive(c.rope_factor, "rope_factor");
    }
    if (scaling == INF_ROPE_SCALING_LLAMA3) {
        require_positive(c.rope_low_freq_factor, "rope_low_freq_factor");
        require_positive(c.rope_high_freq_factor, "rope_high_freq_factor");
        require_positive(c.rope_original_context, "rope_original_context");
        if (c.rope_high_freq_factor <= c.rope_low_freq_factor) {
            fail(INF_STATUS_INVALID_ARGUMENT, "config->rope_high_freq_factor (", c.rope_high_freq_factor,
                 ") must exceed config->rope_low_freq_factor (", c.rope_low_freq_factor, ")");
        }
    }
}

}  // namespace inf
