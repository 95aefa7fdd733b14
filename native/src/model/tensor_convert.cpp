#include "model/tensor_convert.h"

#include <cstring>

#include "kv/dtype.h"

namespace inf {

const char* tensor_type_name(std::int32_t type) noexcept {
    switch (type) {
        case INF_TENSOR_TYPE_F32: return "F32";
        case INF_TENSOR_TYPE_F16: return "F16";
        case INF_TENSOR_TYPE_BF16: return "BF16";
        case INF_TENSOR_TYPE_Q8_0: return "Q8_0";
        default: return "unknown";
    }
}

std::uint64_t tensor_type_bytes(inf_tensor_type type, std::uint64_t elements) noexcept {
    switch (type) {
        case INF_TENSOR_TYPE_F32: return elements * 4;
        case INF_TENSOR_TYPE_F16:
        case INF_TENSOR_TYPE_BF16: return elements * 2;
        case INF_TENSOR_TYPE_Q8_0: return elements / kQ8Block * kQ8BlockBytes;
    }
    return 0;
}

void tensor_to_f32(inf_tensor_type type, const void* src, float* dst, std::uint64_t elements) noexcept {
    const auto* bytes = static_cast<const unsigned char*>(src);
    switch (type) {
        case INF_TENSOR_TYPE_F32: std::memcpy(dst, src, elements * 4); return;
        case INF_TENSOR_TYPE_F16: to_f32(INF_DTYPE_F16, src, dst, elements); return;
        case INF_TENSOR_TYPE_BF16: to_f32(INF_DTYPE_BF16, src, dst, elements); return;
        case INF_TENSOR_TYPE_Q8_0:
            for (std::uint64_t block = 0; block < elements / kQ8Block; ++block) {
                const unsigned char* b = bytes + block * kQ8BlockBytes;
                std::uint16_t scale_bits = 0;
                std::memcpy(&scale_bits, b, 2);  // the scale comes first and may be unaligned
                const float scale = f16_to_f32(scale_bits);
                const auto* q = reinterpret_cast<const std::int8_t*>(b + 2);
                float* out = dst + block * kQ8Block;
                for (std::int64_t i = 0; i < kQ8Block; ++i) {
                    out[i] = scale * static_cast<float>(q[i]);
                }
            }
            return;
    }
}

}  // namespace inf
