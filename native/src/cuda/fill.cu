// Fill kernels: grid-stride loops. The aligned bulk of a fill is written with 16-byte stores of the
// pattern repeated to 16 bytes; the unaligned head and tail use the pattern's own width. Five kernel
// instantiations in all (1, 2, 4, 8 and 16-byte elements) plus one for byte-misaligned destinations.
#include <cstring>

#include "cuda/fill.h"

namespace inf::cuda {

namespace {

constexpr unsigned kThreads = 256;
constexpr std::uint64_t kMaxBlocks = 4096;  // enough to fill any GPU; the loop covers the rest

template <class T>
__global__ void fill_kernel(T* __restrict__ dst, std::uint64_t count, T value) {
    const std::uint64_t stride = static_cast<std::uint64_t>(gridDim.x) * blockDim.x;
    for (std::uint64_t i = static_cast<std::uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride) {
        dst[i] = value;
    }
}

// dst is not aligned to the pattern width: byte by byte (CUDA GPUs are little-endian, like the host,
// so byte k of the pattern is bits 8k..8k+7 of its representation read as an integer).
__global__ void fill_bytes_kernel(unsigned char* __restrict__ dst, std::uint64_t bytes, std::uint64_t pattern,
                                  std::uint32_t pattern_bytes) {
    const std::uint64_t stride = static_cast<std::uint64_t>(gridDim.x) * blockDim.x;
    for (std::uint64_t i = static_cast<std::uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < bytes; i += stride) {
        dst[i] = static_cast<unsigned char>(pattern >> (8U * static_cast<unsigned>(i % pattern_bytes)));
    }
}

unsigned blocks_for(std::uint64_t count) {
    const std::uint64_t blocks = (count + kThreads - 1) / kThreads;
    return static_cast<unsigned>(blocks < kMaxBlocks ? blocks : kMaxBlocks);
}

template <class T>
cudaError_t launch(void* dst, std::uint64_t count, const void* value_bytes) {
    if (count == 0) {
        return cudaSuccess;
    }
    T value;
    std::memcpy(&value, value_bytes, sizeof value);
    fill_kernel<T><<<blocks_for(count), kThreads>>>(static_cast<T*>(dst), count, value);
    return cudaGetLastError();
}

// count elements of pattern_bytes each at an address aligned to pattern_bytes.
cudaError_t launch_scalar(void* dst, std::uint64_t count, const unsigned char* pattern, std::uint32_t pattern_bytes) {
    switch (pattern_bytes) {
        case 1: return launch<std::uint8_t>(dst, count, pattern);
        case 2: return launch<std::uint16_t>(dst, count, pattern);
        case 4: return launch<std::uint32_t>(dst, count, pattern);
        case 8: return launch<std::uint64_t>(dst, count, pattern);
        default: return cudaErrorInvalidValue;
    }
}

}  // namespace

cudaError_t launch_fill(void* dst, std::uint64_t pattern, std::uint32_t pattern_bytes, std::uint64_t count) noexcept {
    if (pattern_bytes != 1 && pattern_bytes != 2 && pattern_bytes != 4 && pattern_bytes != 8) {
        return cudaErrorInvalidValue;
    }
    auto* out = static_cast<unsigned char*>(dst);
    const std::uint64_t total = count * pattern_bytes;
    const auto address = reinterpret_cast<std::uintptr_t>(out);
    if (total == 0) {
        return cudaSuccess;
    }
    if (address % pattern_bytes != 0) {
        fill_bytes_kernel<<<blocks_for(total), kThreads>>>(out, total, pattern, pattern_bytes);
        return cudaGetLastError();
    }
    // The pattern repeated to 16 bytes. pattern_bytes divides 16 and the head below is a whole number of
    // patterns, so every 16-byte word of the body starts at pattern byte 0.
    unsigned char wide[16];
    for (unsigned i = 0; i < 16; ++i) {
        wide[i] = static_cast<unsigned char>(pattern >> (8U * (i % pattern_bytes)));
    }
    std::uint64_t head = (16 - address % 16) % 16;
    head = head < total ? head : total;
    const std::uint64_t body = (total - head) / 16;
    const std::uint64_t tail = total - head - body * 16;
    cudaError_t error = launch_scalar(out, head / pattern_bytes, wide, pattern_bytes);
    if (error == cudaSuccess) {
        error = launch<uint4>(out + head, body, wide);
    }
    if (error == cudaSuccess) {
        error = launch_scalar(out + head + body * 16, tail / pattern_bytes, wide, pattern_bytes);
    }
    return error;
}

}  // namespace inf::cuda
