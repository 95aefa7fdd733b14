#include "model_fixture.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numbers>
#include <random>

#include "kv/dtype.h"

namespace model_test {

namespace {

struct Spec {
    std::string name;
    std::vector<std::int64_t> shape;
};

std::vector<Spec> specs(const inf_model_config& c) {
    const std::int64_t qw = std::int64_t{c.q_heads} * c.head_dim;
    const std::int64_t kw = std::int64_t{c.kv_heads} * c.head_dim;
    std::vector<Spec> list{{"token_embd.weight", {c.vocab_size, c.dim}}, {"output_norm.weight", {c.dim}}};
    if (c.tied_embeddings == 0) {
        list.push_back({"output.weight", {c.vocab_size, c.dim}});
    }
    for (int l = 0; l < c.layers; ++l) {
        const std::string b = "blk." + std::to_string(l) + ".";
        list.push_back({b + "attn_norm.weight", {c.dim}});
        list.push_back({b + "attn_q.weight", {qw, c.dim}});
        list.push_back({b + "attn_k.weight", {kw, c.dim}});
        list.push_back({b + "attn_v.weight", {kw, c.dim}});
        list.push_back({b + "attn_output.weight", {c.dim, qw}});
        list.push_back({b + "ffn_norm.weight", {c.dim}});
        list.push_back({b + "ffn_gate.weight", {c.ffn_dim, c.dim}});
        list.push_back({b + "ffn_up.weight", {c.ffn_dim, c.dim}});
        list.push_back({b + "ffn_down.weight", {c.dim, c.ffn_dim}});
    }
    return list;
}

// Encodes values as type; returns the bytes and the values the encoding decodes to.
std::vector<unsigned char> encode(inf_tensor_type type, const std::vector<float>& values, std::vector<double>& decoded) {
    const std::size_t size = type == INF_TENSOR_TYPE_F32   ? values.size() * 4
                             : type == INF_TENSOR_TYPE_Q8_0 ? values.size() / 32 * 34
                                                            : values.size() * 2;
    std::vector<unsigned char> bytes(size);
    decoded = std::vector<double>(values.size(), 0.0);
    switch (type) {
        case INF_TENSOR_TYPE_F32:
            std::memcpy(bytes.data(), values.data(), bytes.size());
            for (std::size_t i = 0; i < values.size(); ++i) decoded[i] = values[i];
            break;
        case INF_TENSOR_TYPE_F16:
        case INF_TENSOR_TYPE_BF16:
            for (std::size_t i = 0; i < values.size(); ++i) {
                const bool half = type == INF_TENSOR_TYPE_F16;
                const std::uint16_t bits = half ? inf::f32_to_f16(values[i]) : inf::f32_to_bf16(values[i]);
                std::memcpy(bytes.data() + 2 * i, &bits, 2);
                decoded[i] = half ? inf::f16_to_f32(bits) : inf::bf16_to_f32(bits);
            }
            break;
        case INF_TENSOR_TYPE_Q8_0:
            for (std::size_t block = 0; block < values.size() / 32; ++block) {
                float amax = 0.0F;
                for (std::size_t i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(values[block * 32 + i]));
                const std::uint16_t scale_bits = inf::f32_to_f16(amax / 127.0F);
                const float scale = inf::f16_to_f32(scale_bits);
                unsigned char* out = bytes.data() + block * 34;
                std::memcpy(out, &scale_bits, 2);
                for (std::size_t i = 0; i < 32; ++i) {
                    const float q = std::clamp(std::nearbyint(values[block * 32 + i] / scale), -127.0F, 127.0F);
                    const auto quant = static_cast<std::int8_t>(q);
                    std::memcpy(out + 2 + i, &quant, 1);
                    decoded[block * 32 + i] = static_cast<double>(scale) * quant;
                }
            }
            break;
    }
    return bytes;
}

}  // namespace

inf_model_config tiny_config(inf_rope_style style, inf_rope_scaling scaling) {
    inf_model_config c{};
    c.size = sizeof c;
    c.vocab_size = 50;
    c.dim = 64;
    c.layers = 2;
    c.q_heads = 4;
    c.kv_heads = 2;
    c.head_dim = 16;
    c.ffn_dim = 96;
    c.norm_eps = 1e-5F;
    c.rope_theta = 10000.0F;
    c.rope_style = style;
    c.rope_scaling = scaling;
    c.rope_factor = 8.0F;
    c.rope_low_freq_factor = 1.0F;
    c.rope_high_freq_factor = 4.0F;
    c.rope_original_context = 64;
    return c;
}

RandomWeights::RandomWeights(const inf_model_config& config, inf_tensor_type type, std::uint32_t seed) {
    std::mt19937 engine(seed);
    std::normal_distribution<float> normal(0.0F, 1.0F);
    for (const Spec& spec : specs(config)) {
        std::int64_t count = 1;
        for (auto e : spec.shape) count *= e;
        std::vector<float> values(static_cast<std::size_t>(count));
        const bool norm = spec.shape.size() == 1;
        const double scale = 1.0 / std::sqrt(static_cast<double>(spec.shape.back()));
        for (float& value : values) {
            // Norm weights near 1 (as trained models have them), matrices N(0, 1/in).
            value = norm ? 1.0F + 0.2F * normal(engine) : static_cast<float>(normal(engine) * scale);
        }
        std::vector<double> decoded;
        bytes_.push_back(encode(type, values, decoded));
        values_[spec.name] = std::move(decoded);
        names_.push_back(std::make_unique<std::string>(spec.name));
        inf_tensor t{};
        t.size = sizeof t;
        t.type = type;
        t.name = names_.back()->c_str();
        t.dims = static_cast<std::int32_t>(spec.shape.size());
        std::copy(spec.shape.begin(), spec.shape.end(), t.shape);
        t.data = bytes_.back().data();
        t.bytes = bytes_.back().size();
        tensors_.push_back(t);
    }
}

std::size_t RandomWeights::index_of(const std::string& name) const {
    for (std::size_t i = 0; i < tensors_.size(); ++i) {
        if (name == tensors_[i].name) return i;
    }
    ADD_FAILURE() << "no tensor " << name;
    return 0;
}

std::vector<inf_tensor> RandomWeights::tensors_with(const std::string& name, const inf_tensor& replacement) const {
    std::vector<inf_tensor> list = tensors_;
    list[index_of(name)] = replacement;
    return list;
}

namespace {

using Matrix = std::vector<double>;

// y[out] = W[out][in] x[in].
std::vector<double> matvec(const Matrix& w, const std::vector<double>& x, std::size_t out) {
    const std::size_t in = x.size();
    std::vector<double> y(out, 0.0);
    for (std::size_t o = 0; o < out; ++o) {
        for (std::size_t i = 0; i < in; ++i) y[o] += w[o * in + i] * x[i];
    }
    return y;
}

std::vector<double> rms_norm(const std::vector<double>& x, const Matrix& w, double eps) {
    double sum = 0.0;
    for (double v : x) sum += v * v;
    const double inv = 1.0 / std::sqrt(sum / static_cast<double>(x.size()) + eps);
    std::vector<double> y(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) y[i] = x[i] * inv * w[i];
    return y;
}

std::vector<double> inv_freq(const inf_model_config& c) {
    std::vector<double> f(static_cast<std::size_t>(c.head_dim / 2));
    for (std::size_t i = 0; i < f.size(); ++i) {
        double base = std::pow(static_cast<double>(c.rope_theta), -2.0 * static_cast<double>(i) / c.head_dim);
        if (c.rope_scaling == INF_ROPE_SCALING_LINEAR) {
            base /= c.rope_factor;
        } else if (c.rope_scaling == INF_ROPE_SCALING_LLAMA3) {
            const double wavelen = 2.0 * std::numbers::pi / base;
            const double low_wavelen = c.rope_original_context / static_cast<double>(c.rope_low_freq_factor);
            const double high_wavelen = c.rope_original_context / static_cast<double>(c.rope_high_freq_factor);
            if (wavelen > low_wavelen) {
                base /= c.rope_factor;
            } else if (wavelen >= high_wavelen) {
                const double smooth = (c.rope_original_context / wavelen - c.rope_low_freq_factor) /
                                      (static_cast<double>(c.rope_high_freq_factor) - c.rope_low_freq_factor);
                base = (1.0 - smooth) * base / c.rope_factor + smooth * base;
            }
        }
        f[i] = base;
    }
    return f;
}

void rope(std::vector<double>& x, int heads, const inf_model_config& c, int position, const std::vector<double>& f) {
    const int d = c.head_dim;
    for (int h = 0; h < heads; ++h) {
        for (int i = 0; i < d / 2; ++i) {
            const int a = c.rope_style == INF_ROPE_STYLE_HALF ? i : 2 * i;
            const int b = c.rope_style == INF_ROPE_STYLE_HALF ? i + d / 2 : 2 * i + 1;
            const double angle = position * f[static_cast<std::size_t>(i)];
            double& xa = x[static_cast<std::size_t>(h * d + a)];
            double& xb = x[static_cast<std::size_t>(h * d + b)];
            const double ra = xa * std::cos(angle) - xb * std::sin(angle);
            const double rb = xa * std::sin(angle) + xb * std::cos(angle);
            xa = ra;
            xb = rb;
        }
    }
}

}  // namespace

std::vector<double> reference_logits(const inf_model_config& c, const RandomWeights& w,
                                     const std::vector<std::int32_t>& tokens, const ReferenceMask* mask) {
    const auto n = tokens.size();
    const auto dim = static_cast<std::size_t>(c.dim);
    const auto hd = static_cast<std::size_t>(c.head_dim);
    const auto qw = static_cast<std::size_t>(c.q_heads) * hd;
    const auto kw = static_cast<std::size_t>(c.kv_heads) * hd;
    const auto f = inv_freq(c);
    std::vector<std::vector<double>> x(n);
    const Matrix& embd = w.values("token_embd.weight");
    for (std::size_t t = 0; t < n; ++t) {
        x[t].assign(embd.begin() + static_cast<std::ptrdiff_t>(tokens[t] * dim),
                    embd.begin() + static_cast<std::ptrdiff_t>((tokens[t] + 1) * dim));
    }
    for (int l = 0; l < c.layers; ++l) {
        const std::string b = "blk." + std::to_string(l) + ".";
        std::vector<std::vector<double>> q(n), k(n), v(n);
        for (std::size_t t = 0; t < n; ++t) {
            const auto xn = rms_norm(x[t], w.values(b + "attn_norm.weight"), c.norm_eps);
            q[t] = matvec(w.values(b + "attn_q.weight"), xn, qw);
            k[t] = matvec(w.values(b + "attn_k.weight"), xn, kw);
            v[t] = matvec(w.values(b + "attn_v.weight"), xn, kw);
            rope(q[t], c.q_heads, c, static_cast<int>(t), f);
            rope(k[t], c.kv_heads, c, static_cast<int>(t), f);
        }
        const int group = c.q_heads / c.kv_heads;
        for (std::size_t t = 0; t < n; ++t) {
            std::vector<double> attn(qw, 0.0);
            for (int h = 0; h < c.q_heads; ++h) {
                const int kvh = h / group;
                const bool streaming = mask != nullptr && !mask->streaming.empty() &&
                                       mask->streaming[static_cast<std::size_t>(l * c.kv_heads + kvh)] != 0;
                std::vector<double> scores(t + 1, -std::numeric_limits<double>::infinity());
                double top = -std::numeric_limits<double>::infinity();
                for (std::size_t j = 0; j <= t; ++j) {
                    const auto jj = static_cast<std::int64_t>(j);
                    const auto tt = static_cast<std::int64_t>(t);
                    if (streaming && !(jj < mask->sink || jj > tt - mask->local)) continue;
                    if (!streaming && mask != nullptr && !mask->last_pages.empty() && t + 1 == n) {
                        const auto& allowed = mask->last_pages[static_cast<std::size_t>(l * c.kv_heads + kvh)];
                        if (std::find(allowed.begin(), allowed.end(), jj / mask->page_size) == allowed.end()) continue;
                    }
                    double s = 0.0;
                    for (std::size_t i = 0; i < hd; ++i) s += q[t][h * hd + i] * k[j][kvh * hd + i];
                    scores[j] = s / std::sqrt(static_cast<double>(hd));
                    top = std::max(top, scores[j]);
                }
                double total = 0.0;
                for (std::size_t j = 0; j <= t; ++j) {
                    if (std::isinf(scores[j])) continue;
                    const double p = std::exp(scores[j] - top);
                    total += p;
                    for (std::size_t i = 0; i < hd; ++i) attn[h * hd + i] += p * v[j][kvh * hd + i];
                }
                for (std::size_t i = 0; i < hd; ++i) attn[h * hd + i] /= total;
            }
            const auto o = matvec(w.values(b + "attn_output.weight"), attn, dim);
            for (std::size_t i = 0; i < dim; ++i) x[t][i] += o[i];
            const auto xn = rms_norm(x[t], w.values(b + "ffn_norm.weight"), c.norm_eps);
            auto g = matvec(w.values(b + "ffn_gate.weight"), xn, static_cast<std::size_t>(c.ffn_dim));
            const auto u = matvec(w.values(b + "ffn_up.weight"), xn, static_cast<std::size_t>(c.ffn_dim));
            for (std::size_t i = 0; i < g.size(); ++i) g[i] = g[i] / (1.0 + std::exp(-g[i])) * u[i];
            const auto down = matvec(w.values(b + "ffn_down.weight"), g, dim);
            for (std::size_t i = 0; i < dim; ++i) x[t][i] += down[i];
        }
    }
    const Matrix& head = c.tied_embeddings != 0 ? embd : w.values("output.weight");
    std::vector<double> logits;
    for (std::size_t t = 0; t < n; ++t) {
        const auto xn = rms_norm(x[t], w.values("output_norm.weight"), c.norm_eps);
        const auto row = matvec(head, xn, static_cast<std::size_t>(c.vocab_size));
        logits.insert(logits.end(), row.begin(), row.end());
    }
    return logits;
}

double relative_error(const std::vector<float>& actual, const std::vector<double>& expected) {
    EXPECT_EQ(actual.size(), expected.size());
    double diff = 0.0;
    double scale = 0.0;
    for (std::size_t i = 0; i < std::min(actual.size(), expected.size()); ++i) {
        if (std::isnan(actual[i])) return std::numeric_limits<double>::infinity();
        diff = std::max(diff, std::fabs(actual[i] - expected[i]));
        scale = std::max(scale, std::fabs(expected[i]));
    }
    return diff / scale;
}

double relative_error(const std::vector<float>& actual, const std::vector<float>& expected) {
    return relative_error(actual, std::vector<double>(expected.begin(), expected.end()));
}

Model make_model(inf_device* device, const inf_model_config& config, const RandomWeights& weights) {
    inf_model* model = nullptr;
    EXPECT_OK(inf_model_create(device, &config, weights.tensors().data(), static_cast<std::int32_t>(weights.tensors().size()),
                               nullptr, nullptr, &model));
    return Model(model);
}

inf_status run_step(inf_model* model, inf_page_pool* pool, const std::vector<SequenceStep>& sequences,
                    const inf_sparse_step* sparse, std::vector<float>& logits, std::int32_t vocab) {
    std::vector<std::int32_t> token_ids, positions, q_starts{0}, kv_lengths, page_starts{0}, page_ids, logit_tokens;
    for (const SequenceStep& s : sequences) {
        for (std::size_t i = 0; i < s.tokens.size(); ++i) {
            logit_tokens.push_back(static_cast<std::int32_t>(token_ids.size()));
            token_ids.push_back(s.tokens[i]);
            positions.push_back(s.first_position + static_cast<std::int32_t>(i));
        }
        q_starts.push_back(static_cast<std::int32_t>(token_ids.size()));
        kv_lengths.push_back(s.first_position + static_cast<std::int32_t>(s.tokens.size()));
        page_ids.insert(page_ids.end(), s.pages.begin(), s.pages.end());
        page_starts.push_back(static_cast<std::int32_t>(page_ids.size()));
    }
    inf_step_plan plan{};
    plan.size = sizeof plan;
    plan.sequences = static_cast<std::int32_t>(sequences.size());
    plan.tokens = static_cast<std::int32_t>(token_ids.size());
    plan.logit_rows = plan.tokens;
    plan.token_ids = token_ids.data();
    plan.positions = positions.data();
    plan.q_starts = q_starts.data();
    plan.kv_lengths = kv_lengths.data();
    plan.page_starts = page_starts.data();
    plan.page_ids = page_ids.data();
    plan.logit_tokens = logit_tokens.data();
    plan.sparse = sparse;
    logits.assign(static_cast<std::size_t>(plan.tokens) * static_cast<std::size_t>(vocab),
                  std::numeric_limits<float>::quiet_NaN());
    return inf_model_step(model, pool, &plan, logits.data());
}

std::vector<float> run_chunked(inf_model* model, inf_page_pool* pool, const std::vector<std::int32_t>& tokens,
                               std::int32_t chunk, const std::vector<std::int32_t>& pages, std::int32_t page_size,
                               std::int32_t vocab, const inf_sparse_step* sparse) {
    std::vector<float> all;
    for (std::size_t first = 0; first < tokens.size(); first += static_cast<std::size_t>(chunk)) {
        const std::size_t end = std::min(tokens.size(), first + static_cast<std::size_t>(chunk));
        SequenceStep s;
        s.tokens.assign(tokens.begin() + static_cast<std::ptrdiff_t>(first), tokens.begin() + static_cast<std::ptrdiff_t>(end));
        s.first_position = static_cast<std::int32_t>(first);
        const std::size_t needed = (end + static_cast<std::size_t>(page_size) - 1) / static_cast<std::size_t>(page_size);
        s.pages.assign(pages.begin(), pages.begin() + static_cast<std::ptrdiff_t>(needed));
        std::vector<float> logits;
        EXPECT_OK(run_step(model, pool, {s}, sparse, logits, vocab));
        all.insert(all.end(), logits.begin(), logits.end());
    }
    return all;
}

std::vector<std::int32_t> random_tokens(std::size_t count, std::int32_t vocab, std::uint32_t seed) {
    std::mt19937 engine(seed);
    std::uniform_int_distribution<std::int32_t> pick(0, vocab - 1);
    std::vector<std::int32_t> tokens(count);
    for (auto& t : tokens) t = pick(engine);
    return tokens;
}

}  // namespace model_test
