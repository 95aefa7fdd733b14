// Query-aware page selection on CUDA (LServe retrieval heads; inf_page_select_params in
// attention_params.h). Three launches on the legacy default stream:
//  1. page_starts_kernel (one CTA): head_page_starts, the lists + 1 prefix offsets. List (s, h) of
//     sequence s (h < heads_axis = q_heads when per_query_head, else kv_heads) holds
//     k_s = min(n_s, budget_pages) indices, n_s = the sequence's entries.
//  2. page_score_kernel (one warp per (entry, KV head)): the ranking key of every entry for every list
//     into keys[page_starts[s] * heads_axis + h * n_s + e] (64-bit, see below). Only sequences with
//     n_s > budget_pages need keys, but every entry is scored (uniform, cheap next to the summaries).
//  3. page_topk_kernel (one CTA per list): lists with n_s <= budget_pages write 0 .. n_s - 1; others
//     find the k_s-th largest key by an 8-pass MSD radix select (256-bin shared histogram per pass),
//     then write every entry whose key is >= it, in ascending entry order (block-wide prefix sum).
//
// Score (ARCHITECTURE.md "Page summary"): logical sub-page l of entry j (keys from page_positions[j] +
// l * logical_page_size) counts iff that first position is < kv_lengths[s] and it was written (min[0] <=
// max[0]: an unwritten sub-page has min = +inf, max = -inf and must never win); its score is
// sum_i max(q_i * kmax_i, q_i * kmin_i) in f32; the entry scores the max over its counted sub-pages
// (-inf when none); per-KV-head lists take the max over the group's q heads. A NaN score counts as -inf,
// -0 as +0.
//
// Compact summaries (layer.summary_bits 16 or 8, layout in attention_params.h): bfloat16 bounds are
// widened to f32 on load; int8 codes are converted and the box's scale (>= 0) multiplies the finished
// sum, which equals the sum over the decoded bounds (the scale commutes with the max).
//
// Ranking key: (order-preserving bits of the score) << 32 | (0xFFFFFFFF - entry), so equal scores are
// broken in favour of the LOWER entry index, and all keys of a list are distinct: the top k_s keys are
// exactly the keys >= the k_s-th largest. The entry holding the newest key (position kv_lengths[s] - 1;
// the lowest such entry index if several) gets the largest key (all ones), so it is always selected.
#include <cstdint>

#include "cuda/kv_types.cuh"
#include "cuda/paged_kv.h"

namespace inf::cuda {

namespace {

constexpr int kScoreWarps = 8;
constexpr int kScoreThreads = kScoreWarps * 32;
constexpr int kStartsThreads = 1024;
constexpr int kSelectThreads = 512;
constexpr int kMaxDimPerLane = 256 / 32;  // head_dim <= 256
constexpr unsigned kFull = 0xFFFFFFFFu;
constexpr unsigned long long kForcedKey = ~0ULL;

// Monotone map of a float score to 32 bits (larger score, larger bits); NaN -> -inf, -0 -> +0.
__device__ __forceinline__ unsigned order_bits(float x) {
    if (!(x == x)) {
        x = -INFINITY;
    }
    if (x == 0.0f) {
        x = 0.0f;
    }
    const unsigned u = __float_as_uint(x);
    return (u & 0x80000000u) != 0u ? ~u : (u | 0x80000000u);
}

__device__ __forceinline__ unsigned long long rank_key(float score, int entry) {
    return (static_cast<unsigned long long>(order_bits(score)) << 32) |
           static_cast<unsigned long long>(0xFFFFFFFFu - static_cast<unsigned>(entry));
}

__device__ __forceinline__ int heads_axis_of(const inf_page_select_params& p) {
    return p.per_query_head != 0 ? p.q_heads : p.layer.kv_heads;
}

__device__ __forceinline__ int kept_of(const inf_page_select_params& p, int s) {
    const int n = p.page_starts[s + 1] - p.page_starts[s];
    return n < p.budget_pages ? n : p.budget_pages;
}

// Inclusive prefix sum of value over the CTA (blockDim.x a multiple of 32, at most 1024); *total gets
// the CTA's sum. warp_sums: 32 ints of shared memory. Contains barriers: every thread must call it.
__device__ __forceinline__ int block_inclusive_scan(int value, int* warp_sums, int* total) {
    const int lane = static_cast<int>(threadIdx.x) & 31;
    const int warp = static_cast<int>(threadIdx.x) >> 5;
    const int warps = static_cast<int>(blockDim.x) >> 5;
#pragma unroll
    for (int offset = 1; offset < 32; offset <<= 1) {
        const int other = __shfl_up_sync(kFull, value, offset);
        if (lane >= offset) {
            value += other;
        }
    }
    if (lane == 31) {
        warp_sums[warp] = value;
    }
    __syncthreads();
    if (warp == 0) {
        int sum = lane < warps ? warp_sums[lane] : 0;
#pragma unroll
        for (int offset = 1; offset < 32; offset <<= 1) {
            const int other = __shfl_up_sync(kFull, sum, offset);
            if (lane >= offset) {
                sum += other;
            }
        }
        if (lane < warps) {
            warp_sums[lane] = sum;  // inclusive over warps
        }
    }
    __syncthreads();
    const int result = value + (warp > 0 ? warp_sums[warp - 1] : 0);
    *total = warp_sums[warps - 1];
    __syncthreads();  // warp_sums may be reused by the next call
    return result;
}

__global__ void __launch_bounds__(kStartsThreads) page_starts_kernel(inf_page_select_params p) {
    __shared__ int warp_sums[32];
    const int heads_axis = heads_axis_of(p);
    int carry = 0;
    for (int chunk = 0; chunk < p.sequences; chunk += kStartsThreads) {
        const int s = chunk + static_cast<int>(threadIdx.x);
        const int kept = s < p.sequences ? kept_of(p, s) : 0;
        int total = 0;
        const int inclusive = block_inclusive_scan(kept * heads_axis, warp_sums, &total);
        if (s < p.sequences) {
            const int start = carry + inclusive - kept * heads_axis;
            for (int h = 0; h < heads_axis; ++h) {
                p.head_page_starts[static_cast<std::int64_t>(s) * heads_axis + h] = start + h * kept;
            }
        }
        carry += total;
    }
    if (threadIdx.x == 0) {
        p.head_page_starts[static_cast<std::int64_t>(p.sequences) * heads_axis] = carry;
    }
}

// Bound i (0 .. 2 * head_dim: min, then max) of a stored summary box, as f32 (int8: the bare code).
__device__ __forceinline__ float summary_value(const unsigned char* box, int bits, int i) {
    if (bits == 16) {
        return __uint_as_float(static_cast<unsigned>(reinterpret_cast<const unsigned short*>(box)[i]) << 16);
    }
    if (bits == 8) {
        return static_cast<float>(reinterpret_cast<const signed char*>(box)[i]);
    }
    return reinterpret_cast<const float*>(box)[i];
}

// One warp per (entry j, KV head h): scores of j for the q heads of h's group.
__global__ void __launch_bounds__(kScoreThreads) page_score_kernel(inf_page_select_params p, std::int64_t items,
                                                                    unsigned long long* __restrict__ keys) {
    const int lane = static_cast<int>(threadIdx.x) & 31;
    const std::int64_t item = static_cast<std::int64_t>(blockIdx.x) * kScoreWarps + (threadIdx.x >> 5);
    if (item >= items) {
        return;  // warp-uniform; no barrier follows
    }
    const int kv_heads = p.layer.kv_heads;
    const int group = p.q_heads / kv_heads;
    const int j = static_cast<int>(item / kv_heads);
    const int h = static_cast<int>(item % kv_heads);
    // The sequence s with page_starts[s] <= j < page_starts[s + 1] (empty sequences are passed over).
    int lo = 0;
    int hi = p.sequences - 1;
    while (lo < hi) {
        const int mid = (lo + hi) >> 1;
        if (p.page_starts[mid + 1] > j) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    const int s = lo;
    const int base = p.page_starts[s];
    const int n = p.page_starts[s + 1] - base;
    const int e = j - base;
    const int kv_length = p.kv_lengths[s];
    const std::int64_t first = p.page_positions[j];
    const std::int64_t page = p.page_ids[j];
    const int dim = p.layer.head_dim;
    const int lps = p.layer.logical_page_size;
    const int subs = p.layer.page_size / lps;
    const int bits = p.layer.summary_bits == 16 || p.layer.summary_bits == 8 ? p.layer.summary_bits : 32;
    const std::int64_t boxes = static_cast<std::int64_t>(kv_heads) * subs;
    const std::int64_t page_bytes = boxes * 2 * dim * (bits / 8) + (bits == 8 ? boxes * 4 : 0);
    const unsigned char* summary = reinterpret_cast<const unsigned char*>(p.layer.summary) + page * page_bytes;
    const float* scales = reinterpret_cast<const float*>(summary + boxes * 2 * dim);  // int8 only
    const std::int64_t q_row = p.q_rows[s];
    const int heads_axis = p.per_query_head != 0 ? p.q_heads : kv_heads;
    unsigned long long* list_keys = keys + static_cast<std::int64_t>(base) * heads_axis;

    float best = -INFINITY;
    for (int g = 0; g < group; ++g) {
        const int q_head = h * group + g;
        float q[kMaxDimPerLane];
#pragma unroll
        for (int t = 0; t < kMaxDimPerLane; ++t) {
            const int i = lane + 32 * t;
            q[t] = i < dim ? load_q(p.q, p.q_dtype, (q_row * p.q_heads + q_head) * dim + i) : 0.0f;
        }
        float score = -INFINITY;
        for (int l = 0; l < subs; ++l) {
            if (first + static_cast<std::int64_t>(l) * lps >= kv_length) {
                break;  // this and later sub-pages hold no key < kv_length
            }
            const std::int64_t box = static_cast<std::int64_t>(h) * subs + l;
            const unsigned char* values = summary + box * 2 * dim * (bits / 8);
            float partial = 0.0f;
#pragma unroll
            for (int t = 0; t < kMaxDimPerLane; ++t) {
                const int i = lane + 32 * t;
                if (i < dim) {
                    partial += fmaxf(q[t] * summary_value(values, bits, dim + i), q[t] * summary_value(values, bits, i));
                }
            }
#pragma unroll
            for (int offset = 16; offset >= 1; offset >>= 1) {
                partial += __shfl_xor_sync(kFull, partial, offset);
            }
            if (bits == 8) {
                partial *= scales[box];
            }
            // Same value on every lane; an empty int8 box has codes 127 > -127 whatever its scale.
            const bool written = summary_value(values, bits, 0) <= summary_value(values, bits, dim);
            if (written && partial == partial && partial > score) {
                score = partial;
            }
        }
        if (p.per_query_head != 0) {
            if (lane == 0) {
                list_keys[static_cast<std::int64_t>(q_head) * n + e] = rank_key(score, e);
            }
        } else {
            best = fmaxf(best, score);
        }
    }
    if (p.per_query_head == 0 && lane == 0) {
        list_keys[static_cast<std::int64_t>(h) * n + e] = rank_key(best, e);
    }
}

__global__ void __launch_bounds__(kSelectThreads) page_topk_kernel(inf_page_select_params p,
                                                                    const unsigned long long* __restrict__ keys) {
    __shared__ int histogram[256];
    __shared__ int warp_sums[32];
    __shared__ int forced;
    __shared__ int chosen_bucket;
    __shared__ int remaining;
    const int tid = static_cast<int>(threadIdx.x);
    const int heads_axis = heads_axis_of(p);
    const int list = static_cast<int>(blockIdx.x);
    const int s = list / heads_axis;
    const int h = list % heads_axis;
    const int base = p.page_starts[s];
    const int n = p.page_starts[s + 1] - base;
    int* out = p.head_page_indices + p.head_page_starts[list];
    if (n <= p.budget_pages) {
        for (int e = tid; e < n; e += kSelectThreads) {
            out[e] = e;  // every entry, ascending
        }
        return;  // CTA-uniform
    }
    const int k = p.budget_pages;
    const unsigned long long* list_keys = keys + static_cast<std::int64_t>(base) * heads_axis + static_cast<std::int64_t>(h) * n;

    // The entry holding the newest key (lowest index if several); none when kv_length is 0.
    if (tid == 0) {
        forced = 0x7FFFFFFF;
        remaining = k;
    }
    __syncthreads();
    const std::int64_t newest = static_cast<std::int64_t>(p.kv_lengths[s]) - 1;
    const std::int64_t page_size = p.layer.page_size;
    for (int e = tid; e < n; e += kSelectThreads) {
        const std::int64_t first = p.page_positions[base + e];
        if (newest >= first && newest < first + page_size) {
            atomicMin(&forced, e);
        }
    }
    __syncthreads();
    const int forced_entry = forced;

    // MSD radix select of the k-th largest key, 8 bits per pass.
    unsigned long long prefix = 0;
    unsigned long long mask = 0;
    for (int shift = 56; shift >= 0; shift -= 8) {
        for (int b = tid; b < 256; b += kSelectThreads) {
            histogram[b] = 0;
        }
        __syncthreads();
        for (int e = tid; e < n; e += kSelectThreads) {
            const unsigned long long key = e == forced_entry ? kForcedKey : list_keys[e];
            if ((key & mask) == prefix) {
                atomicAdd(&histogram[static_cast<int>((key >> shift) & 0xFFu)], 1);
            }
        }
        __syncthreads();
        if (tid == 0) {
            // Buckets from the top until the count reaches the rank still wanted inside the prefix.
            int want = remaining;
            int bucket = 0;
            for (int b = 255; b >= 0; --b) {
                if (histogram[b] >= want) {
                    bucket = b;
                    break;
                }
                want -= histogram[b];
            }
            chosen_bucket = bucket;
            remaining = want;
        }
        __syncthreads();
        prefix |= static_cast<unsigned long long>(chosen_bucket) << shift;
        mask |= 0xFFULL << shift;
        __syncthreads();  // chosen_bucket / remaining are rewritten by the next pass
    }
    const unsigned long long threshold = prefix;  // the k-th largest key itself (keys are distinct)

    // Entries with key >= threshold (exactly k of them), in ascending order.
    int written = 0;
    for (int chunk = 0; chunk < n; chunk += kSelectThreads) {
        const int e = chunk + tid;
        int keep = 0;
        if (e < n) {
            const unsigned long long key = e == forced_entry ? kForcedKey : list_keys[e];
            keep = key >= threshold ? 1 : 0;
        }
        int total = 0;
        const int inclusive = block_inclusive_scan(keep, warp_sums, &total);
        const int at = written + inclusive - keep;
        if (keep != 0 && at < k) {
            out[at] = e;
        }
        written += total;
    }
}

}  // namespace

std::uint64_t page_select_keys_bytes(const inf_page_select_params& p, std::int64_t total_entries) noexcept {
    const std::int64_t heads_axis = p.per_query_head != 0 ? p.q_heads : p.layer.kv_heads;
    return static_cast<std::uint64_t>(total_entries) * static_cast<std::uint64_t>(heads_axis) *
           sizeof(unsigned long long);
}

cudaError_t launch_page_select(const inf_page_select_params& p, std::int64_t total_entries, void* keys,
                               const char** why) noexcept {
    const inf_kv_layer& layer = p.layer;
    if (layer.summary == nullptr || layer.logical_page_size <= 0 || layer.page_size % layer.logical_page_size != 0) {
        *why = "page_select: the pool keeps no page summaries";
        return cudaErrorInvalidValue;
    }
    if (layer.head_dim <= 0 || layer.head_dim > 256 || layer.kv_heads <= 0 || p.q_heads % layer.kv_heads != 0) {
        *why = "page_select: head_dim must be at most 256 and q_heads a multiple of kv_heads";
        return cudaErrorInvalidValue;
    }
    if (p.q_dtype != INF_DTYPE_F32 && p.q_dtype != layer.dtype) {
        *why = "page_select: q_dtype must be F32 or the pool's dtype";
        return cudaErrorInvalidValue;
    }
    if (p.budget_pages < 1) {
        *why = "page_select: budget_pages must be at least 1";
        return cudaErrorInvalidValue;
    }
    if (p.sequences <= 0) {
        return cudaSuccess;  // the core writes head_page_starts[0] = 0 itself
    }
    const std::int64_t heads_axis = p.per_query_head != 0 ? p.q_heads : layer.kv_heads;
    const std::int64_t lists = static_cast<std::int64_t>(p.sequences) * heads_axis;
    if (lists > 0x7FFFFFFF) {
        *why = "page_select: too many lists for one launch";
        return cudaErrorInvalidValue;
    }
    page_starts_kernel<<<1, kStartsThreads>>>(p);
    cudaError_t error = cudaGetLastError();
    if (error != cudaSuccess) {
        *why = "page_select: offsets kernel launch";
        return error;
    }
    const std::int64_t items = total_entries * layer.kv_heads;
    if (items > 0) {
        if (keys == nullptr) {
            *why = "page_select: no scratch for the scores";
            return cudaErrorInvalidValue;
        }
        const std::int64_t blocks = (items + kScoreWarps - 1) / kScoreWarps;
        if (blocks > 0x7FFFFFFF) {
            *why = "page_select: too many entries for one launch";
            return cudaErrorInvalidValue;
        }
        page_score_kernel<<<static_cast<unsigned>(blocks), kScoreThreads>>>(
            p, items, static_cast<unsigned long long*>(keys));
        error = cudaGetLastError();
        if (error != cudaSuccess) {
            *why = "page_select: score kernel launch";
            return error;
        }
    }
    page_topk_kernel<<<static_cast<unsigned>(lists), kSelectThreads>>>(
        p, static_cast<const unsigned long long*>(keys));
    error = cudaGetLastError();
    if (error != cudaSuccess) {
        *why = "page_select: top-k kernel launch";
    }
    return error;
}

}  // namespace inf::cuda
