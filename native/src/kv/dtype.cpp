#include "kv/dtype.h"

namespace inf {

void to_f32(inf_dtype dtype, const void* src, float* dst, std::uint64_t count) noexcept {
    switch (dtype) {
        case INF_DTYPE_F32:
            std::memcpy(dst, src, count * sizeof(float));
            return;
        case INF_DTYPE_F16: {
            const auto* in = static_cast<const std::uint16_t*>(src);
            for (std::uint64_t i = 0; i < count; ++i) {
                dst[i] = f16_to_f32(in[i]);
            }
            return;
        }
        case INF_DTYPE_BF16: {
            const auto* in = static_cast<const std::uint16_t*>(src);
            for (std::uint64_t i = 0; i < count; ++i) {
                dst[i] = bf16_to_f32(in[i]);
            }
            return;
        }
        case INF_DTYPE_I8: {
            const auto* in = static_cast<const std::int8_t*>(src);
            for (std::uint64_t i = 0; i < count; ++i) {
                dst[i] = static_cast<float>(in[i]);
            }
            return;
        }
    }
}

void from_f32(inf_dtype dtype, const float* src, void* dst, std::uint64_t count) noexcept {
    switch (dtype) {
        case INF_DTYPE_F32:
            std::memcpy(dst, src, count * sizeof(float));
            return;
        case INF_DTYPE_F16: {
            auto* out = static_cast<std::uint16_t*>(dst);
            for (std::uint64_t i = 0; i < count; ++i) {
                out[i] = f32_to_f16(src[i]);
            }
            return;
        }
        case INF_DTYPE_BF16: {
            auto* out = static_cast<std::uint16_t*>(dst);
            for (std::uint64_t i = 0; i < count; ++i) {
                out[i] = f32_to_bf16(src[i]);
            }
            return;
        }
        case INF_DTYPE_I8: {
            auto* out = static_cast<std::int8_t*>(dst);
            for (std::uint64_t i = 0; i < count; ++i) {
                const float c = __builtin_nearbyintf(src[i]);
                out[i] = static_cast<std::int8_t>(c > 127.0f ? 127.0f : (c < -127.0f || c != c ? -127.0f : c));
            }
            return;
        }
    }
}

}  // namespace inf
