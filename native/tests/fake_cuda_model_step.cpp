#include "fake_cuda_model_step.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <vector>

namespace {

// Reads device ranges through the fake's translation; the first bad one is remembered.
struct Reader {
    FakeTranslate translate;
    std::int32_t ordinal;
    const char* bad = nullptr;

    template <class T>
    T* get(const void* pointer, std::uint64_t count, const char* what) {
        if (bad != nullptr || count == 0) {
            return nullptr;
        }
        unsigned char* host = translate(ordinal, pointer, count * sizeof(T));
        if (host == nullptr) {
            bad = what;
        }
        return reinterpret_cast<T*>(host);
    }
};

float weight(const unsigned char* base, inf_dtype dtype, std::uint64_t i) {
    if (dtype == INF_DTYPE_BF16) {
        std::uint16_t bits = 0;
        std::memcpy(&bits, base + 2 * i, 2);
        const std::uint32_t wide = static_cast<std::uint32_t>(bits) << 16;
        float value = 0.0F;
        std::memcpy(&value, &wide, 4);
        return value;
    }
    float value = 0.0F;
    std::memcpy(&value, base + 4 * i, 4);
    return value;
}

// y[rows][out] = x[rows][in] w^T (+ y when accumulate), w [out][in] of dtype.
void linear(const std::vector<float>& x, std::int64_t rows, std::int64_t in, const unsigned char* w, inf_dtype dtype,
            std::int64_t out, std::vector<float>& y, bool accumulate) {
    if (!accumulate) {
        y.assign(static_cast<std::size_t>(rows * out), 0.0F);
    }
    for (std::int64_t r = 0; r < rows; ++r) {
        for (std::int64_t o = 0; o < out; ++o) {
            double sum = 0.0;
            for (std::int64_t i = 0; i < in; ++i) {
                sum += static_cast<double>(x[static_cast<std::size_t>(r * in + i)]) *
                       weight(w, dtype, static_cast<std::uint64_t>(o * in + i));
            }
            y[static_cast<std::size_t>(r * out + o)] += static_cast<float>(sum);
        }
    }
}

void rms_norm(const float* x, const float* w, float eps, std::int64_t dim, float* out) {
    double sum = 0.0;
    for (std::int64_t i = 0; i < dim; ++i)
        sum += static_cast<double>(x[i]) * x[i];
    const double inv = 1.0 / std::sqrt(sum / static_cast<double>(dim) + eps);
    for (std::int64_t i = 0; i < dim; ++i)
        out[i] = static_cast<float>(x[i] * inv * w[i]);
}

}  // namespace

std::uint64_t fake_model_step_workspace_bytes(const inf_plugin_model_step& p) {
    return static_cast<std::uint64_t>(p.tokens > 0 ? p.tokens : 0) * static_cast<std::uint64_t>(p.dim) * 4 + 256;
}

inf_status fake_model_step(std::int32_t ordinal, const inf_plugin_model_step& p, FakeTranslate translate, char* error,
                           bool* bad_pointer) {
    *bad_pointer = false;
    const auto refuse = [&](inf_status status, const char* what) {
        std::snprintf(error, 512, "fake model_step on cuda:%d: %s", ordinal, what);
        return status;
    };
    if (p.size != sizeof(inf_plugin_model_step)) {
        return refuse(INF_STATUS_INVALID_ARGUMENT, "size is not sizeof(inf_plugin_model_step)");
    }
    if (p.weight_dtype != INF_DTYPE_F32 && p.weight_dtype != INF_DTYPE_BF16) {
        return refuse(INF_STATUS_INVALID_ARGUMENT, "weight dtype is not F32 or BF16");
    }
    if (p.workspace_bytes < fake_model_step_workspace_bytes(p)) {
        *bad_pointer = true;
        return refuse(INF_STATUS_INVALID_ARGUMENT, "workspace smaller than model_step_workspace_bytes");
    }
    const std::int64_t tokens = p.tokens;
    const std::int64_t dim = p.dim;
    const std::int64_t hd = p.head_dim;
    const std::int64_t qw = std::int64_t{p.q_heads} * hd;
    const std::int64_t kw = std::int64_t{p.kv_heads} * hd;
    const std::int64_t ffn = p.ffn_dim;
    const std::uint64_t e = p.weight_dtype == INF_DTYPE_BF16 ? 2 : 4;
    const auto u = [](std::int64_t n) { return static_cast<std::uint64_t>(n); };
    Reader read{translate, ordinal};
    read.get<unsigned char>(p.workspace, fake_model_step_workspace_bytes(p), "workspace");
    const auto* token_ids = read.get<const std::int32_t>(p.token_ids, u(tokens), "token_ids");
    const auto* positions = read.get<const std::int32_t>(p.positions, u(tokens), "positions");
    const auto* q_starts = read.get<const std::int32_t>(p.q_starts, u(p.sequences) + 1, "q_starts");
    const auto* kv_lengths = read.get<const std::int32_t>(p.kv_lengths, u(p.sequences), "kv_lengths");
    const auto* page_starts = read.get<const std::int32_t>(p.page_starts, u(p.sequences) + 1, "page_starts");
    const std::int64_t entries = page_starts != nullptr ? page_starts[p.sequences] : 0;
    const auto* page_ids = read.get<const std::int32_t>(p.page_ids, u(entries), "page_ids");
    const auto* page_positions = read.get<const std::int32_t>(p.page_positions, u(entries), "page_positions");
    const auto* token_pages = read.get<const std::int32_t>(p.token_pages, u(tokens), "token_pages");
    const auto* token_slots = read.get<const std::int32_t>(p.token_slots, u(tokens), "token_slots");
    const auto* logit_tokens = read.get<const std::int32_t>(p.logit_tokens, u(p.logit_rows), "logit_tokens");
    const auto* embedding =
        read.get<const unsigned char>(p.token_embedding, u(p.vocab_size) * u(dim) * e, "token_embedding");
    const auto* head = read.get<const unsigned char>(p.lm_head, u(p.vocab_size) * u(dim) * e, "lm_head");
    const auto* output_norm = read.get<const float>(p.output_norm, u(dim), "output_norm");
    const auto* inv_freq = read.get<const double>(p.rope_inv_freq, u(hd / 2), "rope_inv_freq");
    if (read.bad != nullptr) {
        *bad_pointer = true;
        return refuse(INF_STATUS_INVALID_ARGUMENT, read.bad);
    }

    std::vector<float> x(u(tokens * dim));
    for (std::int64_t t = 0; t < tokens; ++t) {
        for (std::int64_t i = 0; i < dim; ++i) {
            x[u(t * dim + i)] = weight(embedding, p.weight_dtype, u(std::int64_t{token_ids[t]} * dim + i));
        }
    }
    std::vector<float> xn(x.size()), qkv, o(u(tokens * qw)), gate_up, act(u(tokens * ffn));
    const std::int64_t group = p.q_heads / p.kv_heads;
    const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
    for (std::int32_t l = 0; l < p.layers; ++l) {
        const inf_plugin_model_layer& w = p.layer[l];
        const inf_kv_layer& kv = w.kv;
        if (kv.dtype != INF_DTYPE_F32) {
            return refuse(INF_STATUS_UNSUPPORTED, "the fake runs float32 pools only");
        }
        const std::uint64_t pool_floats = u(kv.pages) * u(kv.kv_heads) * u(kv.page_size) * u(hd);
        auto* k_pool = read.get<float>(kv.k, pool_floats, "kv.k");
        auto* v_pool = read.get<float>(kv.v, pool_floats, "kv.v");
        const auto* attn_norm = read.get<const float>(w.attn_norm, u(dim), "attn_norm");
        const auto* wqkv = read.get<const unsigned char>(w.wqkv, u(qw + 2 * kw) * u(dim) * e, "wqkv");
        const auto* wo = read.get<const unsigned char>(w.wo, u(dim) * u(qw) * e, "wo");
        const auto* ffn_norm = read.get<const float>(w.ffn_norm, u(dim), "ffn_norm");
        const auto* w_gate_up = read.get<const unsigned char>(w.w_gate_up, u(2 * ffn) * u(dim) * e, "w_gate_up");
        const auto* w_down = read.get<const unsigned char>(w.w_down, u(dim) * u(ffn) * e, "w_down");
        if (read.bad != nullptr) {
            *bad_pointer = true;
            return refuse(INF_STATUS_INVALID_ARGUMENT, read.bad);
        }
        for (std::int64_t t = 0; t < tokens; ++t)
            rms_norm(&x[u(t * dim)], attn_norm, p.norm_eps, dim, &xn[u(t * dim)]);
        linear(xn, tokens, dim, wqkv, p.weight_dtype, qw + 2 * kw, qkv, false);
        const std::int64_t row = qw + 2 * kw;
        for (std::int64_t t = 0; t < tokens; ++t) {
            for (std::int64_t h = 0; h < p.q_heads + p.kv_heads; ++h) {
                float* v = &qkv[u(t * row + h * hd)];
                for (std::int64_t i = 0; i < hd / 2; ++i) {
                    const double angle = positions[t] * inv_freq[i];
                    const auto c = static_cast<float>(std::cos(angle));
                    const auto s = static_cast<float>(std::sin(angle));
                    const std::int64_t a = p.rope_style == INF_ROPE_STYLE_HALF ? i : 2 * i;
                    const std::int64_t b = p.rope_style == INF_ROPE_STYLE_HALF ? i + hd / 2 : 2 * i + 1;
                    const float xa = v[a];
                    const float xb = v[b];
                    v[a] = xa * c - xb * s;
                    v[b] = xa * s + xb * c;
                }
            }
            for (std::int64_t h = 0; h < p.kv_heads; ++h) {
                const std::uint64_t at =
                    ((u(token_pages[t]) * u(kv.kv_heads) + u(h)) * u(kv.page_size) + u(token_slots[t])) * u(hd);
                std::memcpy(&k_pool[at], &qkv[u(t * row + qw + h * hd)], u(hd) * 4);
                std::memcpy(&v_pool[at], &qkv[u(t * row + qw + kw + h * hd)], u(hd) * 4);
            }
        }
        for (std::int32_t s = 0; s < p.sequences; ++s) {
            for (std::int64_t t = q_starts[s]; t < q_starts[s + 1]; ++t) {
                for (std::int64_t h = 0; h < p.q_heads; ++h) {
                    const float* q = &qkv[u(t * row + h * hd)];
                    const std::int64_t kvh = h / group;
                    double top = -std::numeric_limits<double>::infinity();
                    double total = 0.0;
                    std::vector<double> acc(u(hd), 0.0);
                    for (std::int64_t j = page_starts[s]; j < page_starts[s + 1]; ++j) {
                        for (std::int64_t slot = 0; slot < kv.page_size; ++slot) {
                            const std::int64_t key = std::int64_t{page_positions[j]} + slot;
                            if (key > positions[t] || key >= kv_lengths[s])
                                continue;
                            const std::uint64_t at =
                                ((u(page_ids[j]) * u(kv.kv_heads) + u(kvh)) * u(kv.page_size) + u(slot)) * u(hd);
                            double dot = 0.0;
                            for (std::int64_t d = 0; d < hd; ++d)
                                dot += static_cast<double>(q[d]) * k_pool[at + u(d)];
                            const double score = dot * scale;
                            const double next = std::max(top, score);
                            const double shrink = std::exp(top - next);
                            const double weight_of = std::exp(score - next);
                            total = total * shrink + weight_of;
                            for (std::int64_t d = 0; d < hd; ++d)
                                acc[u(d)] = acc[u(d)] * shrink + weight_of * v_pool[at + u(d)];
                            top = next;
                        }
                    }
                    for (std::int64_t d = 0; d < hd; ++d) {
                        o[u(t * qw + h * hd + d)] = total > 0 ? static_cast<float>(acc[u(d)] / total) : 0.0F;
                    }
                }
            }
        }
        linear(o, tokens, qw, wo, p.weight_dtype, dim, x, true);
        for (std::int64_t t = 0; t < tokens; ++t)
            rms_norm(&x[u(t * dim)], ffn_norm, p.norm_eps, dim, &xn[u(t * dim)]);
        linear(xn, tokens, dim, w_gate_up, p.weight_dtype, 2 * ffn, gate_up, false);
        for (std::int64_t t = 0; t < tokens; ++t) {
            for (std::int64_t i = 0; i < ffn; ++i) {
                const float g = gate_up[u(t * 2 * ffn + i)];
                act[u(t * ffn + i)] = g / (1.0F + std::exp(-g)) * gate_up[u(t * 2 * ffn + ffn + i)];
            }
        }
        linear(act, tokens, ffn, w_down, p.weight_dtype, dim, x, true);
    }
    std::vector<float> rows(u(std::int64_t{p.logit_rows} * dim));
    for (std::int32_t r = 0; r < p.logit_rows; ++r) {
        rms_norm(&x[u(std::int64_t{logit_tokens[r]} * dim)], output_norm, p.norm_eps, dim, &rows[u(r * dim)]);
    }
    std::vector<float> logits;
    linear(rows, p.logit_rows, dim, head, p.weight_dtype, p.vocab_size, logits, false);
    if (!logits.empty()) {
        std::memcpy(p.logits, logits.data(), logits.size() * 4);
    }
    return INF_STATUS_OK;
}
