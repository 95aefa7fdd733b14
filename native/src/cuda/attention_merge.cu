// Merge of partial attention results: s = log(sum_i e^s_i), o = sum_i e^(s_i - s) o_i (natural log).
//
// Design: one warp per row. The row's lanes all read every part's lse (first the max, then the sum of
// exponentials, then the weights inside the element loop) and only then, after __syncwarp, lane 0 writes
// lse_out: so lse_out may be lse_parts[0] (every read of that row's old value is done before the write,
// and no other warp touches the row). o_out may be o_parts[0]: each element is read (from every part)
// and written by the same lane. Rows whose every lse is -inf get o = 0, lse = -inf (the max is -inf;
// no exp of -inf - -inf is formed). Exact up to float rounding and independent of the parts' order
// except for the order of the float sums.
//
// Two accessors: pointer arrays (inf_attention_merge: up to kMaxParts per launch, more in rounds that
// merge the running result as part 0) and the strided workspace of split-KV attention.
#include <algorithm>

#include "cuda/kv_types.cuh"
#include "cuda/paged_kv.h"

namespace inf::cuda {

namespace {

constexpr int kWarps = 4;
constexpr int kMaxParts = 32;  // 2 x 32 pointers = 512 bytes of kernel parameters

struct PartArrays {
    const float* o[kMaxParts];
    const float* lse[kMaxParts];
    __device__ const float* o_row(int part, std::int64_t row, int dim) const { return o[part] + row * dim; }
    __device__ float lse_of(int part, std::int64_t row) const { return lse[part][row]; }
};

struct PartStrided {
    const float* o;    // [parts][rows][dim]
    const float* lse;  // [parts][rows]
    std::int64_t rows;
    __device__ const float* o_row(int part, std::int64_t row, int dim) const {
        return o + (part * rows + row) * dim;
    }
    __device__ float lse_of(int part, std::int64_t row) const { return lse[part * rows + row]; }
};

template <class Parts>
__global__ void __launch_bounds__(kWarps * 32) merge_kernel(Parts parts, int count, std::int64_t rows, int dim,
                                                            float* o_out, float* lse_out) {
    const int lane = static_cast<int>(threadIdx.x) % 32;
    const std::int64_t warps = static_cast<std::int64_t>(gridDim.x) * kWarps;
    for (std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32; row < rows;
         row += warps) {
        float m = -INFINITY;
        for (int i = 0; i < count; ++i) {
            m = fmaxf(m, parts.lse_of(i, row));
        }
        float total = -INFINITY;
        if (m != -INFINITY) {
            float sum = 0.0f;
            for (int i = 0; i < count; ++i) {
                sum += expf(parts.lse_of(i, row) - m);  // exp(-inf) = 0 for empty parts
            }
            total = m + logf(sum);  // sum >= 1: the max part contributes e^0
        }
        for (int d = lane; d < dim; d += 32) {
            float value = 0.0f;
            if (total != -INFINITY) {
                for (int i = 0; i < count; ++i) {
                    const float weight = expf(parts.lse_of(i, row) - total);
                    // An empty part's o is 0 by contract; skip it anyway so that a stray NaN there is harmless.
                    if (weight > 0.0f) {
                        value = fmaf(weight, parts.o_row(i, row, dim)[d], value);
                    }
                }
            }
            o_out[row * dim + d] = value;
        }
        __syncwarp();
        if (lane == 0) {
            lse_out[row] = total;
        }
        __syncwarp();
    }
}

unsigned blocks_for(std::int64_t rows) {
    const std::int64_t blocks = (rows + kWarps - 1) / kWarps;
    return static_cast<unsigned>(std::min<std::int64_t>(blocks, 65535));  // the grid-stride loop covers the rest
}

}  // namespace

cudaError_t launch_split_merge(const float* part_o, const float* part_lse, int splits, std::int64_t rows,
                               int head_dim, float* o, float* lse, const char** why) noexcept {
    if (rows <= 0) {
        return cudaSuccess;
    }
    const PartStrided parts{part_o, part_lse, rows};
    merge_kernel<PartStrided><<<blocks_for(rows), kWarps * 32>>>(parts, splits, rows, head_dim, o, lse);
    const cudaError_t error = cudaGetLastError();
    if (error != cudaSuccess) {
        *why = "attention: split merge kernel launch";
    }
    return error;
}

cudaError_t launch_attention_merge(const inf_attention_merge_params& params, const char** why) noexcept {
    if (params.parts <= 0 || params.head_dim <= 0) {
        *why = "attention merge: parts and head_dim must be positive";
        return cudaErrorInvalidValue;
    }
    if (params.rows <= 0) {
        return cudaSuccess;
    }
    // Round 0 merges parts [0, 32) into the output; every later round merges the output (as its part 0)
    // with the next 31 parts.
    int next = 0;
    bool first = true;
    while (next < params.parts) {
        PartArrays arrays{};
        int count = 0;
        if (!first) {
            arrays.o[0] = params.o_out;
            arrays.lse[0] = params.lse_out;
            count = 1;
        }
        while (count < kMaxParts && next < params.parts) {
            arrays.o[count] = params.o_parts[next];
            arrays.lse[count] = params.lse_parts[next];
            ++count;
            ++next;
        }
        merge_kernel<PartArrays><<<blocks_for(params.rows), kWarps * 32>>>(arrays, count, params.rows, params.head_dim,
                                                                          params.o_out, params.lse_out);
        const cudaError_t error = cudaGetLastError();
        if (error != cudaSuccess) {
            *why = "attention merge: kernel launch";
            return error;
        }
        first = false;
    }
    return cudaSuccess;
}

}  // namespace inf::cuda
