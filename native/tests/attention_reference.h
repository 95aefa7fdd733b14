// Float64 references of the paged-KV kernels (attention_params.h), for the kernel tests.
#pragma once

#include <cstdint>
#include <vector>

#include "attention/attention_params.h"

namespace inf::test {

// Element index of storage as float (f32 / f16 / bf16 decoded exactly; i8: the code, unscaled).
float stored_value(const void* base, std::size_t index, inf_dtype dtype);

// Every element of a pool layer's K (or V) as float: [pages][kv_heads][page_size][head_dim] (i8: code times
// the row's layer.k_scale / v_scale, data being layer.k or layer.v).
std::vector<float> decode_layer(const void* data, const inf_kv_layer& layer);

struct RefAttention {
    std::vector<double> o;    // [total_q][q_heads][head_dim]
    std::vector<double> lse;  // [total_q][q_heads], natural log, -inf where nothing is visible
};

// MicroAttention of params (its batch description and shape; params.q / params.layer.k / v are not read)
// over k, v (decode_layer) and q (float values [total_q][q_heads][head_dim]); per-query-head lists and the
// Λ mask of streaming heads (keys < sink_tokens or > q_position - local_tokens) as in attention_params.h.
RefAttention reference_attention(const inf_attention_params& params, const std::vector<float>& k,
                                 const std::vector<float>& v, const std::vector<float>& q);

// Merge of parts partial results, each o [rows][head_dim] and lse [rows].
RefAttention reference_merge(const std::vector<const float*>& o_parts, const std::vector<const float*>& lse_parts,
                             std::int64_t rows, int head_dim);

}  // namespace inf::test
