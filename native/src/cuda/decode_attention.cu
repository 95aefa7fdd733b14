// MicroAttention on CUDA: the SIMT split-KV kernel (decode; prefill where the tensor-core kernel of
// prefill_attention.cu does not apply or would leave the GPU idle) and the dispatch.
//
// Design (decode: few query rows per sequence, bandwidth bound):
// - One CTA per (sequence, KV head, split). The CTA carries every query vector of its KV head's GQA
//   group for its sequence's rows (R = rows x group), in passes of kQueries, so each K/V byte is read
//   once per pass rather than once per query head: for decode (R = group <= 8) that is one pass.
// - The CTA's 4 warps stream disjoint 16-key tiles of the CTA's key range (tile t goes to warp t % 4),
//   each with its own online-softmax state, and merge their states through shared memory at the end.
//   Warps never wait for each other inside the loop, so the SM overlaps one warp's loads with another's
//   math; several CTAs per SM (about 39 KB of shared memory each at head_dim 128, 2-byte dtype) add
//   more loads in flight.
// - A tile is 16 consecutive slots of one page (page sizes are powers of two >= 16, so tiles never
//   straddle pages). K and V rows are copied global -> shared with 16-byte vector loads (rows are
//   16-byte aligned: head_dim is a multiple of 8; see load8), shared rows padded by 16 bytes so that
//   the 8 lanes of one 16-byte shared access phase hit different bank groups.
// - QK: lane = (key lane & 15, half lane >> 4); each half sums every other 8-element chunk of the dot
//   product and one shuffle adds the halves. PV: lane c owns the 8 output dims of chunk c
//   (head_dim <= 256 => at most 32 chunks) and the probabilities are broadcast by shuffles.
// - Scores are kept in base-2 units (scale * log2 e folded in) for exp2f; the lse written is natural
//   log: ln 2 * (m + log2 l).
// - Masking: a key is visible when its position < kv_length and <= the query's position; a whole tile
//   past kv_length or past every query of the pass is skipped before it is loaded (partial last page,
//   causal prefill). An empty list or split gives m = -inf, l = 0 -> o = 0, lse = -inf.
// - Split-KV: when (sequences x KV heads) CTAs cannot fill the GPU, the key range of each is cut into
//   `splits` equal tile ranges (plan_attention: about 4 CTAs per SM, at least 16 tiles per split); the
//   partials (o normalised, lse) go to params.workspace and attention_merge.cu combines them.
// - Per-query-head lists (head_lists_per_query_head): the group's q heads may read different pages, so
//   the CTA carries one q head (group 1 semantics): one CTA per (sequence, q head, split). Such batches
//   never go to the tensor-core prefill kernel.
// - Λ mask (streaming_heads): a streaming KV head's query at p sees keys < sink_tokens or
//   > p - local_tokens (and the causal / kv_length mask). A tile wholly inside the gap
//   [sink_tokens, min over the pass's queries of p - local_tokens] is skipped before it is loaded.
// Everything is f32 inside; only K/V (and q when the pool's dtype is given for it) are 2-byte.
#include <algorithm>

#include "cuda/kv_types.cuh"
#include "cuda/paged_kv.h"

namespace inf::cuda {

namespace {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kTileKeys = 16;
constexpr int kQueries = 8;           // query vectors per pass (acc: kQueries x 8 floats per lane)
constexpr int kMinTilesPerSplit = 16;  // 256 keys: below that a split costs more in merge than it saves
constexpr int kMaxSplits = 256;
constexpr int kCtasPerSm = 4;

// Bytes of one K or V row in shared memory: the row plus 16 bytes of padding (keeps 16-byte alignment).
__host__ __device__ constexpr int shared_row_bytes(int head_dim, int element_bytes) {
    return head_dim * element_bytes + 16;
}

__host__ __device__ constexpr int shared_bytes_for(int head_dim, int element_bytes) {
    // q for one pass (float) + per warp a K and a V tile.
    return kQueries * head_dim * 4 + kWarps * 2 * kTileKeys * shared_row_bytes(head_dim, element_bytes);
}

// Per-query-head lists are in force (the SIMT kernel then runs one CTA per (sequence, q head)).
bool per_query_head_lists(const inf_attention_params& p) {
    return p.head_lists_per_query_head != 0 && p.head_page_starts != nullptr;
}

// CTAs along the head axis of one sequence: KV heads, or q heads with per-query-head lists.
std::int64_t heads_axis(const inf_attention_params& p) {
    return per_query_head_lists(p) ? p.q_heads : p.layer.kv_heads;
}

// Copies the 8 elements at src to dst (both aligned to 8 elements' bytes) with 16-byte accesses.
template <class T>
__device__ __forceinline__ void copy8(T* dst, const T* src) {
    constexpr int kWords = static_cast<int>(sizeof(T) * 8 / 16);  // 1 for 2-byte types, 2 for float
#pragma unroll
    for (int i = 0; i < kWords; ++i) {
        reinterpret_cast<uint4*>(dst)[i] = __ldg(reinterpret_cast<const uint4*>(src) + i);
    }
}

template <class T>
__global__ void __launch_bounds__(kThreads) split_attention_kernel(inf_attention_params p, int splits,
                                                                    float* __restrict__ part_o,
                                                                    float* __restrict__ part_lse) {
    extern __shared__ __align__(16) unsigned char shared[];
    const int dim = p.layer.head_dim;
    const int chunks = dim / 8;
    const int kv_heads = p.layer.kv_heads;
    // Per-query-head lists: one CTA per (sequence, q head) with a group of 1, since the group's q heads
    // read different pages; otherwise one CTA per (sequence, KV head) carrying its whole GQA group.
    const bool per_q_head = p.head_lists_per_query_head != 0 && p.head_page_starts != nullptr;
    const int heads_axis = per_q_head ? p.q_heads : kv_heads;
    const int full_group = p.q_heads / kv_heads;
    const int group = per_q_head ? 1 : full_group;
    const int page_size = p.layer.page_size;
    const int tiles_per_page = page_size / kTileKeys;
    const int row_bytes = shared_row_bytes(dim, static_cast<int>(sizeof(T)));
    const int warp = static_cast<int>(threadIdx.x) / 32;
    const int lane = static_cast<int>(threadIdx.x) % 32;

    int block = static_cast<int>(blockIdx.x);
    const int split = block % splits;
    block /= splits;
    const int head_index = block % heads_axis;  // KV head, or q head with per-q-head lists
    const int sequence = block / heads_axis;
    const int head = per_q_head ? head_index / full_group : head_index;  // the KV head read
    const int q_head0 = per_q_head ? head_index : head * group;           // first q head carried
    // Λ mask: a streaming head's query at p sees keys < sink or > p - local (and causal, < kv_length).
    const bool streaming = p.streaming_heads != nullptr && p.streaming_heads[head] != 0;
    const int sink = p.sink_tokens;
    const int local = p.local_tokens;

    // This (sequence, KV head)'s entries: all of the sequence's, or its head list.
    const int base = p.page_starts[sequence];
    int count = p.page_starts[sequence + 1] - base;
    const std::int32_t* indices = nullptr;
    if (p.head_page_starts != nullptr) {
        const int list = sequence * heads_axis + head_index;
        const int first = p.head_page_starts[list];
        count = p.head_page_starts[list + 1] - first;
        indices = p.head_page_indices + first;
    }
    const std::int64_t total_tiles = static_cast<std::int64_t>(count) * tiles_per_page;
    const std::int64_t per_split = (total_tiles + splits - 1) / splits;
    const std::int64_t tile_begin = per_split * split < total_tiles ? per_split * split : total_tiles;
    const std::int64_t tile_end = tile_begin + per_split < total_tiles ? tile_begin + per_split : total_tiles;

    const int q_begin = p.q_starts[sequence];
    const int rows = (p.q_starts[sequence + 1] - q_begin) * group;
    const int kv_length = p.kv_lengths[sequence];
    const std::int64_t all_rows = static_cast<std::int64_t>(p.total_q) * p.q_heads;
    const float scale = (p.scale != 0.0f ? p.scale : rsqrtf(static_cast<float>(dim))) * kLog2e;

    auto* q_shared = reinterpret_cast<float*>(shared);
    unsigned char* tiles = shared + kQueries * dim * 4;
    T* k_tile = reinterpret_cast<T*>(tiles + (2 * warp) * kTileKeys * row_bytes);
    T* v_tile = reinterpret_cast<T*>(tiles + (2 * warp + 1) * kTileKeys * row_bytes);
    const int row_stride = row_bytes / static_cast<int>(sizeof(T));  // elements

    const T* k_all = static_cast<const T*>(p.layer.k);
    const T* v_all = static_cast<const T*>(p.layer.v);

    for (int r0 = 0; r0 < rows; r0 += kQueries) {
        const int count_r = min(kQueries, rows - r0);
        __syncthreads();  // the previous pass's merge is done with shared memory
        for (int i = static_cast<int>(threadIdx.x); i < count_r * dim; i += kThreads) {
            const int r = i / dim;
            const int d = i % dim;
            const int q_row = q_begin + (r0 + r) / group;
            const int q_head = q_head0 + (r0 + r) % group;
            q_shared[r * dim + d] =
                load_q(p.q, p.q_dtype, (static_cast<std::int64_t>(q_row) * p.q_heads + q_head) * dim + d);
        }
        int q_position[kQueries];
        int max_position = -1;
        int min_position = 0x7FFFFFFF;
#pragma unroll
        for (int r = 0; r < kQueries; ++r) {
            q_position[r] = r < count_r ? p.q_positions[q_begin + (r0 + r) / group] : -1;
            max_position = max(max_position, q_position[r]);
            if (r < count_r) {
                min_position = min(min_position, q_position[r]);
            }
        }
        // Keys at or past this bound are invisible to every query of the pass.
        const int key_limit = min(kv_length, max_position + 1);
        // Streaming head: keys in [sink, gap_end] are invisible to every query of the pass (the band of
        // the query at p starts past p - local; positions and local are >= 0, so no overflow). A tile
        // inside that gap is skipped like a masked one. gap_end < sink: no gap.
        const int gap_end =
            streaming ? static_cast<int>(max(-1LL, static_cast<long long>(min_position) - local)) : -1;
        __syncthreads();

        float m[kQueries];
        float l[kQueries];
        float acc[kQueries][8];
#pragma unroll
        for (int r = 0; r < kQueries; ++r) {
            m[r] = -INFINITY;
            l[r] = 0.0f;
#pragma unroll
            for (int e = 0; e < 8; ++e) {
                acc[r][e] = 0.0f;
            }
        }

        for (std::int64_t t = tile_begin + warp; t < tile_end; t += kWarps) {
            const int entry = static_cast<int>(t / tiles_per_page);
            const int sub = static_cast<int>(t % tiles_per_page);
            const int j = base + (indices != nullptr ? indices[entry] : entry);
            const std::int64_t page = p.page_ids[j];
            const int first_position =
                (p.page_positions != nullptr ? p.page_positions[j] : (j - base) * page_size) + sub * kTileKeys;
            if (first_position >= key_limit ||
                (first_position >= sink && first_position <= gap_end - (kTileKeys - 1))) {
                continue;  // warp-uniform: the whole tile is masked (causal / length, or the Λ gap)
            }
            const std::int64_t first_row = (page * kv_heads + head) * page_size + sub * kTileKeys;
            const T* k_src = k_all + first_row * dim;
            const T* v_src = v_all + first_row * dim;
            for (int i = lane; i < kTileKeys * chunks; i += 32) {
                const int key = i / chunks;
                const int c = i % chunks;
                copy8(k_tile + key * row_stride + c * 8, k_src + static_cast<std::int64_t>(key) * dim + c * 8);
                copy8(v_tile + key * row_stride + c * 8, v_src + static_cast<std::int64_t>(key) * dim + c * 8);
            }
            __syncwarp();

            // Scores: lane's key is lane & 15; the halves split the chunks and are added by one shuffle.
            const int key = lane & 15;
            const int half = lane >> 4;
            float s[kQueries];
#pragma unroll
            for (int r = 0; r < kQueries; ++r) {
                s[r] = 0.0f;
            }
            for (int c = half; c < chunks; c += 2) {
                float kv[8];
                load8(k_tile + key * row_stride + c * 8, kv);
#pragma unroll
                for (int r = 0; r < kQueries; ++r) {
                    if (r < count_r) {
                        const float* qr = q_shared + r * dim + c * 8;
#pragma unroll
                        for (int e = 0; e < 8; ++e) {
                            s[r] = fmaf(qr[e], kv[e], s[r]);
                        }
                    }
                }
            }
            const int position = first_position + key;
            float prob[kQueries];
#pragma unroll
            for (int r = 0; r < kQueries; ++r) {
                s[r] += __shfl_xor_sync(0xFFFFFFFFu, s[r], 16);
                const bool visible = r < count_r && position < kv_length && position <= q_position[r] &&
                                     (!streaming || position < sink ||
                                      static_cast<long long>(position) > static_cast<long long>(q_position[r]) - local);
                const float score = visible ? s[r] * scale : -INFINITY;
                float tile_max = score;
#pragma unroll
                for (int offset = 8; offset >= 1; offset >>= 1) {
                    tile_max = fmaxf(tile_max, __shfl_xor_sync(0xFFFFFFFFu, tile_max, offset));
                }
                const float m_new = fmaxf(m[r], tile_max);
                // m_new = -inf: nothing visible yet; keep the state (exp2f(-inf - -inf) would be NaN).
                const float alpha = m_new == -INFINITY ? 1.0f : exp2f(m[r] - m_new);
                prob[r] = m_new == -INFINITY ? 0.0f : exp2f(score - m_new);
                float sum = prob[r];
#pragma unroll
                for (int offset = 8; offset >= 1; offset >>= 1) {
                    sum += __shfl_xor_sync(0xFFFFFFFFu, sum, offset);
                }
                l[r] = l[r] * alpha + sum;
                m[r] = m_new;
#pragma unroll
                for (int e = 0; e < 8; ++e) {
                    acc[r][e] *= alpha;
                }
            }

            // o += p V: lane owns chunk `lane` of the output; the probability of key kk is on lane kk.
            for (int kk = 0; kk < kTileKeys; ++kk) {
                float vv[8];
                if (lane < chunks) {
                    load8(v_tile + kk * row_stride + lane * 8, vv);
                }
#pragma unroll
                for (int r = 0; r < kQueries; ++r) {
                    const float pk = __shfl_sync(0xFFFFFFFFu, prob[r], kk);
                    if (lane < chunks) {
#pragma unroll
                        for (int e = 0; e < 8; ++e) {
                            acc[r][e] = fmaf(pk, vv[e], acc[r][e]);
                        }
                    }
                }
            }
            __syncwarp();  // the tile is read before the next copy overwrites it
        }

        // Merge the warps' states through shared memory (over the tiles, which are no longer needed).
        __syncthreads();
        auto* merge_ml = reinterpret_cast<float*>(tiles);                // [warp][kQueries][2]
        float* merge_acc = merge_ml + kWarps * kQueries * 2;             // [warp][kQueries][dim]
        if (lane == 0) {
#pragma unroll
            for (int r = 0; r < kQueries; ++r) {
                merge_ml[(warp * kQueries + r) * 2] = m[r];
                merge_ml[(warp * kQueries + r) * 2 + 1] = l[r];
            }
        }
        if (lane < chunks) {
#pragma unroll
            for (int r = 0; r < kQueries; ++r) {
#pragma unroll
                for (int e = 0; e < 8; ++e) {
                    merge_acc[(warp * kQueries + r) * dim + lane * 8 + e] = acc[r][e];
                }
            }
        }
        __syncthreads();
        for (int i = static_cast<int>(threadIdx.x); i < count_r * dim; i += kThreads) {
            const int r = i / dim;
            const int d = i % dim;
            float m_all = -INFINITY;
#pragma unroll
            for (int w = 0; w < kWarps; ++w) {
                m_all = fmaxf(m_all, merge_ml[(w * kQueries + r) * 2]);
            }
            float l_all = 0.0f;
            float o_all = 0.0f;
            if (m_all != -INFINITY) {
#pragma unroll
                for (int w = 0; w < kWarps; ++w) {
                    const float weight = exp2f(merge_ml[(w * kQueries + r) * 2] - m_all);  // 0 for an empty warp
                    l_all += merge_ml[(w * kQueries + r) * 2 + 1] * weight;
                    o_all += merge_acc[(w * kQueries + r) * dim + d] * weight;
                }
            }
            const bool any = l_all > 0.0f;
            const float o_value = any ? o_all / l_all : 0.0f;
            const float lse_value = any ? (m_all + log2f(l_all)) * kLn2 : -INFINITY;
            const int q_row = q_begin + (r0 + r) / group;
            const int q_head = q_head0 + (r0 + r) % group;
            const std::int64_t out_row = static_cast<std::int64_t>(q_row) * p.q_heads + q_head;
            if (part_o == nullptr) {
                p.o[out_row * dim + d] = o_value;
                if (d == 0) {
                    p.lse[out_row] = lse_value;
                }
            } else {
                const std::int64_t part_row = split * all_rows + out_row;
                part_o[part_row * dim + d] = o_value;
                if (d == 0) {
                    part_lse[part_row] = lse_value;
                }
            }
        }
    }
}

template <class T>
cudaError_t launch_split(const inf_attention_params& p, int splits, float* part_o, float* part_lse,
                         int max_shared_bytes, const char** why) {
    const int shared_bytes = shared_bytes_for(p.layer.head_dim, static_cast<int>(sizeof(T)));
    if (shared_bytes > max_shared_bytes) {
        *why = "attention: head_dim too large for this GPU's shared memory";
        return cudaErrorInvalidValue;
    }
    if (shared_bytes > 48 * 1024) {
        // Above 48 KB a kernel must opt in (f32 pools, head_dim 256).
        const cudaError_t error = cudaFuncSetAttribute(split_attention_kernel<T>,
                                                       cudaFuncAttributeMaxDynamicSharedMemorySize, shared_bytes);
        if (error != cudaSuccess) {
            *why = "attention: cudaFuncSetAttribute(MaxDynamicSharedMemorySize)";
            return error;
        }
    }
    const std::int64_t blocks = static_cast<std::int64_t>(p.sequences) * heads_axis(p) * splits;
    split_attention_kernel<T><<<static_cast<unsigned>(blocks), kThreads, static_cast<std::size_t>(shared_bytes)>>>(
        p, splits, part_o, part_lse);
    const cudaError_t error = cudaGetLastError();
    if (error != cudaSuccess) {
        *why = "attention: split-KV kernel launch";
    }
    return error;
}

// Whether the tensor-core prefill kernel serves p: supported shape on an sm_80+ device with the shared
// memory it needs, and (mode kAuto) enough query rows per sequence (max_q >= kPrefillMinRows) and not
// a launch of few CTAs where the SIMT kernel would split a long key axis over the idle SMs (a short
// chunk at a very long context). Untuned thresholds.
constexpr int kPrefillMinRows = 16;

bool use_prefill_kernel(const inf_attention_params& p, const AttentionPlan& plan, int sm_count, int max_shared_bytes,
                        PrefillMode mode) {
    if (mode == PrefillMode::kSimt || !prefill_supported(p) || per_query_head_lists(p) ||
        prefill_shared_bytes(p.layer.head_dim) > max_shared_bytes) {
        return false;
    }
    int device = 0;
    int major = 0;
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess || major < 8) {
        cudaGetLastError();
        return false;
    }
    if (mode == PrefillMode::kMma) {
        return true;
    }
    if (p.max_q < kPrefillMinRows) {
        return false;
    }
    const bool few_ctas = prefill_ctas(p) < static_cast<std::int64_t>(sm_count);
    return !(few_ctas && plan.splits > 1 && p.workspace != nullptr && p.workspace_bytes >= plan.workspace_bytes);
}

}  // namespace

AttentionPlan plan_attention(const inf_attention_params& p, int sm_count) noexcept {
    AttentionPlan plan{1, 0};
    const std::int64_t ctas = static_cast<std::int64_t>(p.sequences) * heads_axis(p);
    const std::int64_t tiles = static_cast<std::int64_t>(p.max_entries) * (p.layer.page_size / kTileKeys);
    const std::int64_t target = static_cast<std::int64_t>(std::max(sm_count, 1)) * kCtasPerSm;
    if (ctas <= 0 || ctas >= target || tiles < 2 * kMinTilesPerSplit) {
        return plan;
    }
    std::int64_t splits = (target + ctas - 1) / ctas;
    splits = std::min<std::int64_t>(splits, tiles / kMinTilesPerSplit);
    splits = std::min<std::int64_t>(splits, kMaxSplits);
    splits = std::min<std::int64_t>(splits, 0x7FFFFFFF / ctas);
    if (splits <= 1) {
        return plan;
    }
    const std::uint64_t rows = static_cast<std::uint64_t>(p.total_q) * static_cast<std::uint64_t>(p.q_heads);
    plan.splits = static_cast<int>(splits);
    plan.workspace_bytes = static_cast<std::uint64_t>(splits) * rows * (static_cast<std::uint64_t>(p.layer.head_dim) + 1) *
                           sizeof(float);
    return plan;
}

cudaError_t launch_attention(const inf_attention_params& p, int sm_count, int max_shared_bytes,
                             PrefillMode mode, const char** why) noexcept {
    const inf_kv_layer& layer = p.layer;
    if (layer.head_dim <= 0 || layer.head_dim % 8 != 0 || layer.head_dim > 256) {
        *why = "attention: head_dim must be a multiple of 8 up to 256";
        return cudaErrorInvalidValue;
    }
    if (layer.page_size < kTileKeys || layer.page_size % kTileKeys != 0 || layer.kv_heads <= 0 ||
        p.q_heads % layer.kv_heads != 0) {
        *why = "attention: page_size must be a multiple of 16 and q_heads a multiple of kv_heads";
        return cudaErrorInvalidValue;
    }
    if (p.sequences <= 0 || p.total_q <= 0) {
        return cudaSuccess;
    }
    if (p.q_dtype != INF_DTYPE_F32 && p.q_dtype != layer.dtype) {
        *why = "attention: q_dtype must be F32 or the pool's dtype";
        return cudaErrorInvalidValue;
    }
    AttentionPlan plan = plan_attention(p, sm_count);
    if (use_prefill_kernel(p, plan, sm_count, max_shared_bytes, mode)) {
        return launch_prefill_attention(p, max_shared_bytes, why);
    }
    if (plan.splits > 1 && (p.workspace == nullptr || p.workspace_bytes < plan.workspace_bytes)) {
        plan = AttentionPlan{1, 0};  // no room for partials: one pass per (sequence, head), still exact
    }
    float* part_o = nullptr;
    float* part_lse = nullptr;
    if (plan.splits > 1) {
        const std::uint64_t rows = static_cast<std::uint64_t>(p.total_q) * static_cast<std::uint64_t>(p.q_heads);
        part_o = static_cast<float*>(p.workspace);
        part_lse = part_o + static_cast<std::uint64_t>(plan.splits) * rows * static_cast<std::uint64_t>(layer.head_dim);
    }
    cudaError_t error = cudaErrorInvalidValue;
    switch (layer.dtype) {
        case INF_DTYPE_F32: error = launch_split<float>(p, plan.splits, part_o, part_lse, max_shared_bytes, why); break;
        case INF_DTYPE_F16: error = launch_split<__half>(p, plan.splits, part_o, part_lse, max_shared_bytes, why); break;
        case INF_DTYPE_BF16:
            error = launch_split<__nv_bfloat16>(p, plan.splits, part_o, part_lse, max_shared_bytes, why);
            break;
        default: *why = "attention: unknown dtype"; return cudaErrorInvalidValue;
    }
    if (error != cudaSuccess || plan.splits == 1) {
        return error;
    }
    return launch_split_merge(part_o, part_lse, plan.splits, static_cast<std::int64_t>(p.total_q) * p.q_heads,
                              layer.head_dim, p.o, p.lse, why);
}

}  // namespace inf::cuda
