#include "attention_reference.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kv/dtype.h"

namespace inf::test {

float stored_value(const void* base, std::size_t index, inf_dtype dtype) {
    switch (dtype) {
    case INF_DTYPE_F32:
        return static_cast<const float*>(base)[index];
    case INF_DTYPE_BF16:
        return inf::bf16_to_f32(static_cast<const std::uint16_t*>(base)[index]);
    case INF_DTYPE_I8:
        return static_cast<float>(static_cast<const std::int8_t*>(base)[index]);  // the code; scale apart
    default:
        return inf::f16_to_f32(static_cast<const std::uint16_t*>(base)[index]);
    }
}

std::vector<float> decode_layer(const void* data, const inf_kv_layer& layer) {
    const std::size_t count = static_cast<std::size_t>(layer.pages) * static_cast<std::size_t>(layer.kv_heads) *
                              static_cast<std::size_t>(layer.page_size) * static_cast<std::size_t>(layer.head_dim);
    std::vector<float> out(count);
    // int8: code * the row's scale, in float32 as the pool's read_page computes it.
    const float* scales = layer.dtype != INF_DTYPE_I8 ? nullptr : data == layer.k ? layer.k_scale : layer.v_scale;
    for (std::size_t i = 0; i < count; ++i) {
        out[i] = stored_value(data, i, layer.dtype);
        if (scales != nullptr) {
            out[i] *= scales[i / static_cast<std::size_t>(layer.head_dim)];
        }
    }
    return out;
}

RefAttention reference_attention(const inf_attention_params& p, const std::vector<float>& k,
                                 const std::vector<float>& v, const std::vector<float>& q) {
    const std::size_t D = static_cast<std::size_t>(p.layer.head_dim);
    const int kv_heads = p.layer.kv_heads;
    const int group = p.q_heads / kv_heads;
    const std::size_t ps = static_cast<std::size_t>(p.layer.page_size);
    RefAttention out;
    out.o.assign(static_cast<std::size_t>(p.total_q) * static_cast<std::size_t>(p.q_heads) * D, 0.0);
    out.lse.assign(static_cast<std::size_t>(p.total_q) * static_cast<std::size_t>(p.q_heads),
                   -std::numeric_limits<double>::infinity());
    std::vector<double> scores;
    std::vector<const float*> values;
    for (int s = 0; s < p.sequences; ++s) {
        const int base = p.page_starts[s];
        for (int row = p.q_starts[s]; row < p.q_starts[s + 1]; ++row) {
            for (int head = 0; head < p.q_heads; ++head) {
                const int h = head / group;
                const bool streaming = p.streaming_heads != nullptr && p.streaming_heads[h] != 0;
                std::vector<int> entries;
                if (p.head_page_starts != nullptr) {
                    // One list per (sequence, KV head), or per (sequence, query head).
                    const int list = p.head_lists_per_query_head != 0 ? s * p.q_heads + head : s * kv_heads + h;
                    for (int i = p.head_page_starts[list]; i < p.head_page_starts[list + 1]; ++i) {
                        entries.push_back(base + p.head_page_indices[i]);
                    }
                } else {
                    for (int j = base; j < p.page_starts[s + 1]; ++j) {
                        entries.push_back(j);
                    }
                }
                const std::size_t qi = static_cast<std::size_t>(row) * static_cast<std::size_t>(p.q_heads) + static_cast<std::size_t>(head);
                const float* qv = q.data() + qi * D;
                scores.clear();
                values.clear();
                for (const int j : entries) {
                    const std::int64_t pos0 = p.page_positions != nullptr ? p.page_positions[j]
                                                                         : static_cast<std::int64_t>(j - base) * p.layer.page_size;
                    for (std::size_t t = 0; t < ps; ++t) {
                        const std::int64_t pos = pos0 + static_cast<std::int64_t>(t);
                        if (pos >= p.kv_lengths[s] || pos > p.q_positions[row]) {
                            continue;
                        }
                        // Λ mask of a streaming head: only the sinks and the local window.
                        if (streaming && pos >= p.sink_tokens &&
                            pos <= static_cast<std::int64_t>(p.q_positions[row]) - p.local_tokens) {
                            continue;
                        }
                        const std::size_t at = ((static_cast<std::size_t>(p.page_ids[j]) * static_cast<std::size_t>(kv_heads) +
                                                 static_cast<std::size_t>(h)) * ps + t) * D;
                        double dot = 0.0;
                        for (std::size_t d = 0; d < D; ++d) {
                            dot += static_cast<double>(qv[d]) * static_cast<double>(k[at + d]);
                        }
                        scores.push_back(dot * static_cast<double>(p.scale));
                        values.push_back(v.data() + at);
                    }
                }
                if (scores.empty()) {
                    continue;
                }
                const double mx = *std::max_element(scores.begin(), scores.end());
                double sum = 0.0;
                for (double& score : scores) {
                    score = std::exp(score - mx);
                    sum += score;
                }
                double* o = out.o.data() + qi * D;
                for (std::size_t i = 0; i < scores.size(); ++i) {
                    const double w = scores[i] / sum;
                    for (std::size_t d = 0; d < D; ++d) {
                        o[d] += w * static_cast<double>(values[i][d]);
                    }
                }
                out.lse[qi] = mx + std::log(sum);
            }
        }
    }
    return out;
}

RefAttention reference_merge(const std::vector<const float*>& o_parts, const std::vector<const float*>& lse_parts,
                             std::int64_t rows, int head_dim) {
    const std::size_t D = static_cast<std::size_t>(head_dim);
    RefAttention out;
    out.o.assign(static_cast<std::size_t>(rows) * D, 0.0);
    out.lse.assign(static_cast<std::size_t>(rows), -std::numeric_limits<double>::infinity());
    for (std::size_t r = 0; r < static_cast<std::size_t>(rows); ++r) {
        double mx = -std::numeric_limits<double>::infinity();
        for (const float* lse : lse_parts) {
            mx = std::max(mx, static_cast<double>(lse[r]));
        }
        if (std::isinf(mx)) {
            continue;
        }
        double sum = 0.0;
        for (const float* lse : lse_parts) {
            sum += std::exp(static_cast<double>(lse[r]) - mx);
        }
        for (std::size_t i = 0; i < o_parts.size(); ++i) {
            const double w = std::exp(static_cast<double>(lse_parts[i][r]) - mx) / sum;
            if (w == 0.0) {
                continue;
            }
            for (std::size_t d = 0; d < D; ++d) {
                out.o[r * D + d] += w * static_cast<double>(o_parts[i][r * D + d]);
            }
        }
        out.lse[r] = mx + std::log(sum);
    }
    return out;
}

}  // namespace inf::test
