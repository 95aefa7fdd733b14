#include "model/rope.h"

#include <cmath>
#include <numbers>

#include "core/thread_pool.h"

namespace inf {

std::vector<double> rope_inv_freq(const inf_model_config& c) {
    const std::int32_t pairs = c.head_dim / 2;
    std::vector<double> inv_freq(static_cast<std::size_t>(pairs));
    for (std::int32_t i = 0; i < pairs; ++i) {
        double f = std::pow(static_cast<double>(c.rope_theta), -2.0 * i / c.head_dim);
        if (c.rope_scaling == INF_ROPE_SCALING_LINEAR) {
            f /= c.rope_factor;
        } else if (c.rope_scaling == INF_ROPE_SCALING_LLAMA3) {
            // Llama 3.1: high frequencies (short wavelengths) unchanged, low ones divided by factor,
            // a linear blend in 1 / wavelength between the two cut-offs.
            const double wavelen = 2.0 * std::numbers::pi / f;
            const double original = c.rope_original_context;
            const double low = c.rope_low_freq_factor;
            const double high = c.rope_high_freq_factor;
            if (wavelen > original / low) {
                f /= c.rope_factor;
            } else if (wavelen >= original / high) {
                const double smooth = (original / wavelen - low) / (high - low);
                f = (1.0 - smooth) * f / c.rope_factor + smooth * f;
            }
        }
        inv_freq[static_cast<std::size_t>(i)] = f;
    }
    return inv_freq;
}

void rope_tables(const std::vector<double>& inv_freq, const std::int32_t* positions, std::int32_t tokens, float* cos_out,
                 float* sin_out) {
    const auto pairs = static_cast<std::int64_t>(inv_freq.size());
    const auto body = [&](std::int64_t begin, std::int64_t end, int) {
        for (std::int64_t t = begin; t < end; ++t) {
            for (std::int64_t i = 0; i < pairs; ++i) {
                const double angle = positions[t] * inv_freq[static_cast<std::size_t>(i)];
                cos_out[t * pairs + i] = static_cast<float>(std::cos(angle));
                sin_out[t * pairs + i] = static_cast<float>(std::sin(angle));
            }
        }
    };
    if (tokens < 64) {
        body(0, tokens, 0);
    } else {
        ThreadPool::instance().parallel_for(tokens, body);
    }
}

void rope_apply(float* x, std::int32_t tokens, std::int32_t heads, std::int32_t head_dim, inf_rope_style style,
                const float* cos_table, const float* sin_table) {
    const std::int64_t pairs = head_dim / 2;
    const std::int64_t row = std::int64_t{heads} * head_dim;
    // Pair (a, b) of element indices: INTERLEAVED (2i, 2i+1), HALF (i, i + head_dim / 2).
    const std::int64_t stride = style == INF_ROPE_STYLE_HALF ? 1 : 2;
    const std::int64_t partner = style == INF_ROPE_STYLE_HALF ? pairs : 1;
    const auto body = [&](std::int64_t begin, std::int64_t end, int) {
        for (std::int64_t t = begin; t < end; ++t) {
            const float* c = cos_table + t * pairs;
            const float* s = sin_table + t * pairs;
            for (std::int64_t h = 0; h < heads; ++h) {
                float* v = x + t * row + h * head_dim;
                for (std::int64_t i = 0; i < pairs; ++i) {
                    const float a = v[i * stride];
                    const float b = v[i * stride + partner];
                    v[i * stride] = a * c[i] - b * s[i];
                    v[i * stride + partner] = a * s[i] + b * c[i];
                }
            }
        }
    };
    if (tokens < 64) {
        body(0, tokens, 0);
    } else {
        ThreadPool::instance().parallel_for(tokens, body);
    }
}

}  // namespace inf
