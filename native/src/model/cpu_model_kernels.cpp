#include "model/cpu_model_kernels.h"

#include <cmath>

#include "core/thread_pool.h"

namespace inf::cpu {

namespace {

// Below this many elements a kernel runs on the calling thread.
constexpr std::int64_t kParallelElements = std::int64_t{1} << 16;

template <class Body>
void spread(std::int64_t items, std::int64_t item_elements, Body&& body) {
    if (items * item_elements < kParallelElements || items < 2) {
        body(0, items, 0);
    } else {
        ThreadPool::instance().parallel_for(items, body);
    }
}

}  // namespace

void rms_norm(const float* x, const float* w, float eps, std::int64_t rows, std::int64_t dim, float* out) {
    spread(rows, dim, [&](std::int64_t begin, std::int64_t end, int) {
        for (std::int64_t r = begin; r < end; ++r) {
            const float* in = x + r * dim;
            float* o = out + r * dim;
            float sum = 0.0F;
            for (std::int64_t i = 0; i < dim; ++i) {
                sum += in[i] * in[i];
            }
            const float inv = 1.0F / std::sqrt(sum / static_cast<float>(dim) + eps);
            for (std::int64_t i = 0; i < dim; ++i) {
                o[i] = in[i] * inv * w[i];
            }
        }
    });
}

void silu_mul(float* gate, const float* up, std::int64_t count) {
    constexpr std::int64_t kChunk = 4096;
    spread((count + kChunk - 1) / kChunk, kChunk, [&](std::int64_t begin, std::int64_t end, int) {
        const std::int64_t last = end * kChunk < count ? end * kChunk : count;
        for (std::int64_t i = begin * kChunk; i < last; ++i) {
            const float g = gate[i];
            gate[i] = g / (1.0F + std::exp(-g)) * up[i];
        }
    });
}

void add_into(float* dst, const float* src, std::int64_t count) {
    constexpr std::int64_t kChunk = 4096;
    spread((count + kChunk - 1) / kChunk, kChunk, [&](std::int64_t begin, std::int64_t end, int) {
        const std::int64_t last = end * kChunk < count ? end * kChunk : count;
        for (std::int64_t i = begin * kChunk; i < last; ++i) {
            dst[i] += src[i];
        }
    });
}

}  // namespace inf::cpu
