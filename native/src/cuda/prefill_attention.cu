// MicroAttention prefill on CUDA tensor cores: FlashAttention-2 style over the paged KV (sm_80+).
//
// Design (prefill: many query rows per sequence, compute bound):
// - One CTA (4 warps) per (sequence, KV head, tile of kRows = 64 stacked query rows). The query rows of
//   every q head of the KV head's GQA group are stacked, head fastest: stacked row r of sequence s is
//   query row q_starts[s] + r / group of q head kv_head * group + r % group. So one K/V tile in shared
//   memory serves the whole group. Warp w owns stacked rows 16w .. 16w + 15 of the CTA's tile.
// - Keys stream in tiles of kKeys = 64: four 16-key sub-tiles, each inside one page (page_size is a
//   multiple of 16), so a tile may span several pages and entries. Sub-tile u of a (sequence, KV head)
//   is slot 16 (u % (page_size / 16)) of entry u / (page_size / 16) of its list (the sequence's entries,
//   or its head list). K and V go global -> shared with 16-byte cp.async.cg, double buffered: tile t+1
//   is in flight while tile t is multiplied.
// - Shared rows are head_dim * 2 bytes (128 or 256: multiples of 128) with an XOR swizzle of the
//   16-byte chunks: chunk c of row r lives at chunk c ^ (r & 7). Every 8x8 ldmatrix reads 8 consecutive
//   rows at one logical chunk, hence 8 distinct physical chunks mod 8 = all 32 banks once; cp.async
//   writes of 8 consecutive chunks of a row are likewise conflict-free.
// - Causal tile skipping: the CTA's key limit is min(max query position of its rows, kv_length - 1).
//   A sub-tile whose first position is past it is never loaded (zero-filled); a 64-key tile with no
//   visible sub-tile is skipped entirely. Keys past the limit inside a loaded sub-tile are zero-filled
//   too (cp.async src-size 0), so stale page slots (possibly NaN bit patterns) never reach the P V
//   product; per-row masking (key position <= min(q position, kv_length - 1)) does the rest.
// - Math per warp and key tile: S (16 x 64) = Q K^T with mma.m16n8k16 (f32 accumulate), Q fragments
//   kept in registers for the whole CTA; scores in base-2 units (scale * log2 e) for exp2f; online
//   softmax in registers (row max across the 4 lanes of a quad with __shfl_xor_sync 1 and 2; the row sum
//   stays per lane and is reduced once at the end); P rounded to the pool's 2-byte type is reused as
//   the A operand of O += P V (V fragments by ldmatrix.trans). At the end o = acc / l and
//   lse = ln 2 * (m + log2 l) (natural log); a row with no visible key gets o = 0, lse = -inf.
// - Λ mask (streaming_heads, LServe): a streaming KV head's row at position p sees keys < sink_tokens or
//   > p - local_tokens only (per-row mask in the score step). Keys in [sink_tokens, min p of the CTA's
//   rows - local_tokens] are invisible to every row of the CTA: find_tile skips sub-tiles wholly inside
//   that gap like causally masked ones, so a streaming CTA visits the sink tiles and the band near the
//   diagonal only. Streaming and dense heads share the launch (CTAs differ only in what they visit).
// - Per-query-head lists (head_lists_per_query_head) are not served here (the dispatch in
//   decode_attention.cu sends them to the SIMT kernel): a CTA's stacked rows share one K/V list.
// - Precision: q (f32 or the pool's type) is rounded to the pool's type on load, P to the pool's type
//   before the P V product; everything else is f32.
//
// Fragment layouts of mma.sync.aligned.m16n8k16 (PTX ISA, 16-bit A/B, f32 C/D); lane = 4 g + t with
// g = lane >> 2 (groupID) and t = lane & 3 (thread in group); each 32-bit register holds two 16-bit
// elements, the lower column / k index in the low half:
//   A (16 x 16, row major): a0 = A[g][2t, 2t+1], a1 = A[g+8][2t, 2t+1],
//                           a2 = A[g][2t+8, 2t+9], a3 = A[g+8][2t+8, 2t+9]
//   B (16 x 8, "col": k x n): b0 = B[2t, 2t+1][g], b1 = B[2t+8, 2t+9][g]
//   C/D (16 x 8, f32): c0, c1 = C[g][2t, 2t+1], c2, c3 = C[g+8][2t, 2t+1]
// ldmatrix.x4: lanes 8i .. 8i+7 give the row addresses of matrix i (16 bytes = 8 elements each);
// register i of lane l receives matrix i's row l >> 2, elements 2 (l & 3), +1; with .trans it
// receives matrix i's rows 2 (l & 3), +1 at column l >> 2 instead.
#include <algorithm>
#include <cstdint>

#include "cuda/kv_types.cuh"
#include "cuda/paged_kv.h"

namespace inf::cuda {

namespace {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kRows = 16 * kWarps;  // stacked query rows per CTA
constexpr int kKeys = 64;           // keys per tile
constexpr int kSubKeys = 16;        // keys per sub-tile (inside one page)
constexpr int kSubTiles = kKeys / kSubKeys;
constexpr int kNoKey = 0x7FFFFFF0;  // first position of an invisible sub-tile: past every limit, no overflow
constexpr unsigned kFull = 0xFFFFFFFFu;

template <int D>
struct Layout {
    static constexpr int kRowBytes = D * 2;                 // one shared K, V or Q row (2-byte types)
    static constexpr int kChunks = D / 8;                   // 16-byte chunks per row
    static constexpr int kTileBytes = kKeys * kRowBytes;    // one K or V tile
    static constexpr int kQBytes = kRows * kRowBytes;
    static constexpr int kBytes = kQBytes + 2 /*stages*/ * 2 /*K, V*/ * kTileBytes;
    static_assert(kRowBytes % 128 == 0, "the swizzle needs rows of whole 128-byte bank lines");
    static_assert((kSubKeys * kChunks) % kThreads == 0, "a sub-tile's chunks split evenly over the threads");
};

// Byte offset of 16-byte chunk c of row r in a swizzled shared array of rows of row_bytes.
__device__ __forceinline__ unsigned swizzle(int r, int c, int row_bytes) {
    return static_cast<unsigned>(r * row_bytes + ((c ^ (r & 7)) << 4));
}

__device__ __forceinline__ unsigned shared_address(const void* p) {
    return static_cast<unsigned>(__cvta_generic_to_shared(p));
}

// 16 bytes global -> shared, bypassing L1; valid == false writes 16 zero bytes and reads nothing.
__device__ __forceinline__ void cp_async16(unsigned dst, const void* src, bool valid) {
    const int src_bytes = valid ? 16 : 0;
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes) : "memory");
}
__device__ __forceinline__ void cp_async_commit() {
    asm volatile("cp.async.commit_group;\n" ::: "memory");
}
template <int N>
__device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

__device__ __forceinline__ void ldmatrix_x4(unsigned address, unsigned (&r)[4]) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(address)
                 : "memory");
}
__device__ __forceinline__ void ldmatrix_x4_trans(unsigned address, unsigned (&r)[4]) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(address)
                 : "memory");
}

// c += A B for one m16n8k16 tile (layouts above).
template <class T>
__device__ __forceinline__ void mma16816(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1);
template <>
__device__ __forceinline__ void mma16816<__nv_bfloat16>(float (&c)[4], const unsigned (&a)[4], unsigned b0,
                                                         unsigned b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <>
__device__ __forceinline__ void mma16816<__half>(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Two floats -> two 2-byte elements (round to nearest even), lo in the low half.
template <class T>
__device__ __forceinline__ unsigned pack2(float lo, float hi);
template <>
__device__ __forceinline__ unsigned pack2<__nv_bfloat16>(float lo, float hi) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const unsigned*>(&v);
}
template <>
__device__ __forceinline__ unsigned pack2<__half>(float lo, float hi) {
    const __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const unsigned*>(&v);
}

// Where a (sequence, KV head)'s key sub-tiles live.
struct KeyList {
    const std::int32_t* indices;  // head list (entry indices relative to base), or null: entries in order
    int base;                     // page_starts[sequence]
    int subs_per_page;            // page_size / 16
    std::int64_t total_subs;      // entries x subs_per_page
};

// Finds the first tile >= t (t < tiles on entry or not) with a sub-tile whose first key position is at
// most limit and that is not wholly inside the Λ gap [sink, gap_end] (gap_end < sink + 15: no gap);
// t = tiles when none. The warp's lanes examine 32 sub-tiles (8 tiles) per round, in
// parallel. On return every lane has, for the found tile's sub-tiles i, first[i] (kNoKey: nothing of it
// is visible, or past the list) and row[i] (first K/V row of the sub-tile in the pool, in rows of
// head_dim). Every warp of the CTA computes the same answer from the same data.
__device__ __forceinline__ void find_tile(const inf_attention_params& p, const KeyList& list, int head, int limit,
                                          int sink, int gap_end, std::int64_t tiles, std::int64_t& t, int (&first)[kSubTiles],
                                          std::int64_t (&row)[kSubTiles]) {
    const int lane = static_cast<int>(threadIdx.x) & 31;
    const int page_size = p.layer.page_size;
    while (t < tiles) {
        const std::int64_t sub = t * kSubTiles + lane;
        int position = kNoKey;
        std::int64_t sub_row = 0;
        if (sub < list.total_subs) {
            const int entry = static_cast<int>(sub / list.subs_per_page);
            const int within = static_cast<int>(sub % list.subs_per_page);
            const int j = list.base + (list.indices != nullptr ? list.indices[entry] : entry);
            const int start = p.page_positions != nullptr ? p.page_positions[j] : (j - list.base) * page_size;
            position = start + within * kSubKeys;
            // Past the limit, or (streaming head) wholly inside the Λ gap [sink, gap_end] of every row.
            if (position > limit || (position >= sink && position <= gap_end - (kSubKeys - 1))) {
                position = kNoKey;
            } else {
                sub_row = (static_cast<std::int64_t>(p.page_ids[j]) * p.layer.kv_heads + head) * page_size +
                          within * kSubKeys;
            }
        }
        const unsigned visible = __ballot_sync(kFull, position != kNoKey);
        if (visible != 0u) {
            const int lead = (__ffs(static_cast<int>(visible)) - 1) & ~(kSubTiles - 1);  // sub-tile 0 of the tile
            t += lead / kSubTiles;
#pragma unroll
            for (int i = 0; i < kSubTiles; ++i) {
                first[i] = __shfl_sync(kFull, position, lead + i);
                row[i] = __shfl_sync(kFull, static_cast<long long>(sub_row), lead + i);
            }
            return;
        }
        t += 32 / kSubTiles;
    }
    t = tiles;
}

// Queues the K and V rows of one tile into a stage: keys past limit (and invisible sub-tiles) as zeros.
template <class T, int D>
__device__ __forceinline__ void load_tile(const inf_attention_params& p, unsigned k_stage, unsigned v_stage,
                                          int limit, const int (&first)[kSubTiles],
                                          const std::int64_t (&row)[kSubTiles]) {
    using L = Layout<D>;
    const T* k_all = static_cast<const T*>(p.layer.k);
    const T* v_all = static_cast<const T*>(p.layer.v);
    const int tid = static_cast<int>(threadIdx.x);
#pragma unroll
    for (int i = 0; i < kSubTiles; ++i) {
#pragma unroll
        for (int u = 0; u < kSubKeys * L::kChunks / kThreads; ++u) {
            const int index = tid + u * kThreads;
            const int key_in = index / L::kChunks;  // key within the sub-tile
            const int c = index % L::kChunks;
            const int key = i * kSubKeys + key_in;
            // first[i] + key_in <= limit, without overflow (limit >= 0 here, first may be kNoKey).
            const bool valid = first[i] <= limit - key_in;
            const std::int64_t offset = valid ? (row[i] + key_in) * D + c * 8 : 0;
            const unsigned dst = swizzle(key, c, L::kRowBytes);
            cp_async16(k_stage + dst, k_all + offset, valid);
            cp_async16(v_stage + dst, v_all + offset, valid);
        }
    }
}

template <class T, int D>
__global__ void __launch_bounds__(kThreads, 2) prefill_attention_kernel(inf_attention_params p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
    __trap();  // cp.async, ldmatrix and bf16 mma need sm_80; the host never launches it below that
#else
    using L = Layout<D>;
    constexpr int kSteps = D / 16;  // k-steps of Q K^T; pairs of 8-wide output column tiles of P V
    extern __shared__ __align__(128) unsigned char shared[];

    const int tid = static_cast<int>(threadIdx.x);
    const int warp = tid / 32;
    const int lane = tid % 32;
    const int g = lane >> 2;  // groupID: fragment rows g and g + 8
    const int t4 = lane & 3;  // thread in group: fragment columns 2 t4, 2 t4 + 1 (+ 8)
    const int kv_heads = p.layer.kv_heads;
    const int group = p.q_heads / kv_heads;
    const int head = static_cast<int>(blockIdx.x % static_cast<unsigned>(kv_heads));
    const int row_tiles = static_cast<int>(gridDim.x / static_cast<unsigned>(kv_heads));
    // Last row tiles (the most keys under a causal mask) first.
    const int row_tile = row_tiles - 1 - static_cast<int>(blockIdx.x / static_cast<unsigned>(kv_heads));
    const int sequence = static_cast<int>(blockIdx.y);
    const int q_begin = p.q_starts[sequence];
    const int rows = (p.q_starts[sequence + 1] - q_begin) * group;
    const int row0 = row_tile * kRows;
    if (row0 >= rows) {
        return;  // CTA-uniform, before any barrier: this sequence has fewer rows than the longest
    }
    const int kv_length = p.kv_lengths[sequence];

    // q rows -> shared (rounded to T), zeros for rows past the sequence's.
    unsigned char* q_shared = shared;
    for (int i = tid; i < kRows * L::kChunks; i += kThreads) {
        const int r = i / L::kChunks;
        const int c = i % L::kChunks;
        const int row = row0 + r;
        uint4 value = make_uint4(0u, 0u, 0u, 0u);
        if (row < rows) {
            const std::int64_t at =
                (static_cast<std::int64_t>(q_begin + row / group) * p.q_heads + head * group + row % group) * D + c * 8;
            if (p.q_dtype == INF_DTYPE_F32) {
                const float4* src = reinterpret_cast<const float4*>(static_cast<const float*>(p.q) + at);
                const float4 a = __ldg(src);
                const float4 b = __ldg(src + 1);
                value = make_uint4(pack2<T>(a.x, a.y), pack2<T>(a.z, a.w), pack2<T>(b.x, b.y), pack2<T>(b.z, b.w));
            } else {
                value = __ldg(reinterpret_cast<const uint4*>(static_cast<const T*>(p.q) + at));
            }
        }
        *reinterpret_cast<uint4*>(q_shared + swizzle(r, c, L::kRowBytes)) = value;
    }

    // Key limits: per fragment row (h = 0: row g, h = 1: row g + 8) and for the whole CTA.
    int limit[2];
    int q_position[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        const int row = row0 + warp * 16 + g + 8 * h;
        q_position[h] = row < rows ? p.q_positions[q_begin + row / group] : -1;
        limit[h] = row < rows ? min(q_position[h], kv_length - 1) : -1;
    }
    int cta_limit = -1;
    int cta_min = 0x7FFFFFFF;
    {
        const int q_first = row0 / group;
        const int q_last = (min(rows, row0 + kRows) - 1) / group;
        for (int qi = q_first + lane; qi <= q_last; qi += 32) {
            cta_limit = max(cta_limit, p.q_positions[q_begin + qi]);
            cta_min = min(cta_min, p.q_positions[q_begin + qi]);
        }
        cta_limit = min(__reduce_max_sync(kFull, cta_limit), kv_length - 1);
        cta_min = __reduce_min_sync(kFull, cta_min);
    }
    // Λ mask (LServe streaming heads): the query at p sees keys < sink or > p - local only. Keys in
    // [sink, gap_end] are invisible to every row of the CTA, so sub-tiles wholly inside are skipped.
    const bool streaming = p.streaming_heads != nullptr && p.streaming_heads[head] != 0;
    const int sink = p.sink_tokens;
    const long long local = p.local_tokens;
    const int gap_end = streaming ? static_cast<int>(max(-1LL, static_cast<long long>(cta_min) - local)) : -1;

    // This (sequence, KV head)'s key list.
    KeyList list{};
    list.base = p.page_starts[sequence];
    int entries = p.page_starts[sequence + 1] - list.base;
    list.indices = nullptr;
    if (p.head_page_starts != nullptr) {
        const int at = sequence * kv_heads + head;
        const int begin = p.head_page_starts[at];
        entries = p.head_page_starts[at + 1] - begin;
        list.indices = p.head_page_indices + begin;
    }
    list.subs_per_page = p.layer.page_size / kSubKeys;
    list.total_subs = static_cast<std::int64_t>(entries) * list.subs_per_page;
    const std::int64_t tiles = cta_limit >= 0 ? (list.total_subs + kSubTiles - 1) / kSubTiles : 0;

    const unsigned stage_base = shared_address(shared + L::kQBytes);  // [stage][K, V][key][row]
    std::int64_t tile = 0;
    int first[kSubTiles];
    std::int64_t sub_row[kSubTiles];
    find_tile(p, list, head, cta_limit, sink, gap_end, tiles, tile, first, sub_row);
    if (tile < tiles) {
        load_tile<T, D>(p, stage_base, stage_base + L::kTileBytes, cta_limit, first, sub_row);
    }
    cp_async_commit();

    __syncthreads();  // q_shared is written
    // Q fragments of the warp's 16 rows, k-step kk: matrices (rows 0-7 | 8-15) x (chunk 2kk | 2kk+1) =
    // a0, a1, a2, a3: lane l addresses row l & 15, chunk 2 kk + (l >> 4).
    unsigned qf[kSteps][4];
#pragma unroll
    for (int kk = 0; kk < kSteps; ++kk) {
        const int r = warp * 16 + (lane & 15);
        ldmatrix_x4(shared_address(q_shared) + swizzle(r, 2 * kk + (lane >> 4), L::kRowBytes), qf[kk]);
    }

    const float scale = (p.scale != 0.0f ? p.scale : rsqrtf(static_cast<float>(D))) * kLog2e;
    float m[2] = {-INFINITY, -INFINITY};  // running row max (base 2), equal on the 4 lanes of a quad
    float l[2] = {0.0f, 0.0f};            // this lane's part of the running row sum
    float acc[D / 8][4];                  // O tile dt: C layout, columns 8 dt + 2 t4 + {0, 1}
#pragma unroll
    for (int dt = 0; dt < D / 8; ++dt) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            acc[dt][e] = 0.0f;
        }
    }

    int stage = 0;
    while (tile < tiles) {
        // Queue the next visible tile into the other stage (freed by the barrier that ended the last step).
        std::int64_t next = tile + 1;
        int next_first[kSubTiles];
        std::int64_t next_row[kSubTiles];
        find_tile(p, list, head, cta_limit, sink, gap_end, tiles, next, next_first, next_row);
        if (next < tiles) {
            const unsigned k_next = stage_base + static_cast<unsigned>((stage ^ 1) * 2 * L::kTileBytes);
            load_tile<T, D>(p, k_next, k_next + L::kTileBytes, cta_limit, next_first, next_row);
        }
        cp_async_commit();   // possibly empty: keeps "all but the newest group" = this tile's group
        cp_async_wait<1>();  // this thread's copies of the current tile have landed
        __syncthreads();     // and everyone else's

        const unsigned k_tile = stage_base + static_cast<unsigned>(stage * 2 * L::kTileBytes);
        const unsigned v_tile = k_tile + L::kTileBytes;

        // S = Q K^T: s[j] is the 16 x 8 C tile of keys 8j .. 8j+7. B = K^T (k = head dim, n = key) is
        // "col" major = K rows as stored. ldmatrix.x4 for key pair np, k-step kk: matrices
        // (keys 16np + 0-7, chunk 2kk) = b0 of tile 2np, (16np + 0-7, 2kk+1) = b1 of 2np,
        // (16np + 8-15, 2kk) = b0 of 2np+1, (16np + 8-15, 2kk+1) = b1 of 2np+1; lane l addresses
        // key 16np + 8 (l >> 4) + (l & 7), chunk 2kk + ((l >> 3) & 1).
        float s[kKeys / 8][4];
#pragma unroll
        for (int j = 0; j < kKeys / 8; ++j) {
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                s[j][e] = 0.0f;
            }
        }
#pragma unroll
        for (int kk = 0; kk < kSteps; ++kk) {
#pragma unroll
            for (int np = 0; np < kKeys / 16; ++np) {
                const int key = np * 16 + ((lane >> 4) << 3) + (lane & 7);
                unsigned b[4];
                ldmatrix_x4(k_tile + swizzle(key, 2 * kk + ((lane >> 3) & 1), L::kRowBytes), b);
                mma16816<T>(s[2 * np], qf[kk], b[0], b[1]);
                mma16816<T>(s[2 * np + 1], qf[kk], b[2], b[3]);
            }
        }

        // Scale and mask: element e of s[j] is row g + 8 (e >> 1), key 8j + 2 t4 + (e & 1), which is key
        // (j & 1) 8 + 2 t4 + (e & 1) of sub-tile j >> 1, at position first[j >> 1] + that.
#pragma unroll
        for (int j = 0; j < kKeys / 8; ++j) {
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int key_in = (j & 1) * 8 + 2 * t4 + (e & 1);
                bool visible = first[j >> 1] <= limit[e >> 1] - key_in;  // no overflow: limit >= -1
                if (streaming) {
                    // first + key_in <= kNoKey + 15 < INT_MAX; the band test in 64 bits.
                    const int position = first[j >> 1] + key_in;
                    visible = visible && (position < sink ||
                                          static_cast<long long>(position) > static_cast<long long>(q_position[e >> 1]) - local);
                }
                s[j][e] = visible ? s[j][e] * scale : -INFINITY;
            }
        }

        // Online softmax per row h.
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            float tile_max = -INFINITY;
#pragma unroll
            for (int j = 0; j < kKeys / 8; ++j) {
                tile_max = fmaxf(tile_max, fmaxf(s[j][2 * h], s[j][2 * h + 1]));
            }
            tile_max = fmaxf(tile_max, __shfl_xor_sync(kFull, tile_max, 1));
            tile_max = fmaxf(tile_max, __shfl_xor_sync(kFull, tile_max, 2));
            const float m_new = fmaxf(m[h], tile_max);
            // Nothing visible yet: subtract 0 so that exp2f(-inf - 0) = 0 (never -inf - -inf = NaN).
            const float m_use = m_new == -INFINITY ? 0.0f : m_new;
            const float alpha = exp2f(m[h] - m_use);  // 0 when m[h] = -inf (acc and l are 0 then)
            m[h] = m_new;
            float sum = 0.0f;
#pragma unroll
            for (int j = 0; j < kKeys / 8; ++j) {
                s[j][2 * h] = exp2f(s[j][2 * h] - m_use);
                s[j][2 * h + 1] = exp2f(s[j][2 * h + 1] - m_use);
                sum += s[j][2 * h] + s[j][2 * h + 1];
            }
            l[h] = l[h] * alpha + sum;
#pragma unroll
            for (int dt = 0; dt < D / 8; ++dt) {
                acc[dt][2 * h] *= alpha;
                acc[dt][2 * h + 1] *= alpha;
            }
        }

        // O += P V over k-steps of 16 keys. A = P (rows x keys 16kk .. 16kk+15) from the S C tiles
        // 2kk (keys +0-7) and 2kk+1 (keys +8-15): a0 = s[2kk][0, 1], a1 = s[2kk][2, 3],
        // a2 = s[2kk+1][0, 1], a3 = s[2kk+1][2, 3]. B = V (k = key, n = head dim) is row major in shared
        // memory, hence .trans: matrices (keys 16kk + 0-7, chunk 2dp) = b0 of output tile 2dp,
        // (16kk + 8-15, 2dp) = b1 of 2dp, (16kk + 0-7, 2dp+1) = b0 of 2dp+1, (16kk + 8-15, 2dp+1) = b1
        // of 2dp+1; lane l addresses key 16kk + (l & 15), chunk 2dp + (l >> 4).
#pragma unroll
        for (int kk = 0; kk < kKeys / 16; ++kk) {
            const unsigned a[4] = {pack2<T>(s[2 * kk][0], s[2 * kk][1]), pack2<T>(s[2 * kk][2], s[2 * kk][3]),
                                   pack2<T>(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                                   pack2<T>(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
            for (int dp = 0; dp < kSteps; ++dp) {
                unsigned b[4];
                ldmatrix_x4_trans(v_tile + swizzle(kk * 16 + (lane & 15), 2 * dp + (lane >> 4), L::kRowBytes), b);
                mma16816<T>(acc[2 * dp], a, b[0], b[1]);
                mma16816<T>(acc[2 * dp + 1], a, b[2], b[3]);
            }
        }

        __syncthreads();  // every warp is done with this stage before the next step refills it
        tile = next;
#pragma unroll
        for (int i = 0; i < kSubTiles; ++i) {
            first[i] = next_first[i];
        }
        stage ^= 1;
    }
    cp_async_wait<0>();  // nothing may be in flight at exit (only empty groups can be left here)

    // o = acc / l, lse = ln 2 (m + log2 l); rows with nothing visible: o = 0, lse = -inf.
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        float total = l[h];
        total += __shfl_xor_sync(kFull, total, 1);
        total += __shfl_xor_sync(kFull, total, 2);
        const int row = row0 + warp * 16 + g + 8 * h;
        if (row < rows) {
            const std::int64_t out_row =
                static_cast<std::int64_t>(q_begin + row / group) * p.q_heads + head * group + row % group;
            const bool any = total > 0.0f;
            const float inverse = any ? 1.0f / total : 0.0f;
            float* o = p.o + out_row * D + 2 * t4;
#pragma unroll
            for (int dt = 0; dt < D / 8; ++dt) {
                *reinterpret_cast<float2*>(o + dt * 8) = make_float2(acc[dt][2 * h] * inverse, acc[dt][2 * h + 1] * inverse);
            }
            if (t4 == 0) {
                p.lse[out_row] = any ? (m[h] + log2f(total)) * kLn2 : -INFINITY;
            }
        }
    }
#endif
}

template <class T, int D>
cudaError_t launch_typed(const inf_attention_params& p, int max_shared_bytes, const char** why) {
    constexpr int kBytes = Layout<D>::kBytes;
    if (kBytes > max_shared_bytes) {
        *why = "attention: prefill kernel needs more shared memory than this GPU has";
        return cudaErrorInvalidValue;
    }
    cudaError_t error =
        cudaFuncSetAttribute(prefill_attention_kernel<T, D>, cudaFuncAttributeMaxDynamicSharedMemorySize, kBytes);
    if (error != cudaSuccess) {
        *why = "attention: cudaFuncSetAttribute(MaxDynamicSharedMemorySize) for the prefill kernel";
        return error;
    }
    const int group = p.q_heads / p.layer.kv_heads;
    const std::int64_t row_tiles = (static_cast<std::int64_t>(p.max_q) * group + kRows - 1) / kRows;
    const dim3 grid(static_cast<unsigned>(row_tiles * p.layer.kv_heads), static_cast<unsigned>(p.sequences), 1);
    prefill_attention_kernel<T, D><<<grid, kThreads, static_cast<std::size_t>(kBytes)>>>(p);
    error = cudaGetLastError();
    if (error != cudaSuccess) {
        *why = "attention: prefill kernel launch";
    }
    return error;
}

}  // namespace

bool prefill_supported(const inf_attention_params& p) noexcept {
    const inf_kv_layer& layer = p.layer;
    if ((layer.dtype != INF_DTYPE_BF16 && layer.dtype != INF_DTYPE_F16) ||
        (layer.head_dim != 64 && layer.head_dim != 128)) {
        return false;
    }
    if (p.q_dtype != INF_DTYPE_F32 && p.q_dtype != layer.dtype) {
        return false;
    }
    if (layer.kv_heads <= 0 || p.q_heads % layer.kv_heads != 0 || layer.page_size < kSubKeys ||
        layer.page_size % kSubKeys != 0 || p.sequences <= 0 || p.sequences > 65535 || p.max_q <= 0) {
        return false;
    }
    const std::int64_t group = p.q_heads / layer.kv_heads;
    const std::int64_t ctas = (static_cast<std::int64_t>(p.max_q) * group + kRows - 1) / kRows * layer.kv_heads;
    return ctas <= 0x7FFFFFFF;
}

int prefill_shared_bytes(int head_dim) noexcept {
    return head_dim == 64 ? Layout<64>::kBytes : head_dim == 128 ? Layout<128>::kBytes : 0;
}

std::int64_t prefill_ctas(const inf_attention_params& p) noexcept {
    const std::int64_t group = p.q_heads / std::max(p.layer.kv_heads, 1);
    return (static_cast<std::int64_t>(p.max_q) * group + kRows - 1) / kRows * p.layer.kv_heads * p.sequences;
}

cudaError_t launch_prefill_attention(const inf_attention_params& p, int max_shared_bytes, const char** why) noexcept {
    if (!prefill_supported(p)) {
        *why = "attention: shape not supported by the prefill kernel";
        return cudaErrorInvalidValue;
    }
    if (p.total_q <= 0) {
        return cudaSuccess;
    }
    const bool bf16 = p.layer.dtype == INF_DTYPE_BF16;
    if (p.layer.head_dim == 64) {
        return bf16 ? launch_typed<__nv_bfloat16, 64>(p, max_shared_bytes, why)
                    : launch_typed<__half, 64>(p, max_shared_bytes, why);
    }
    return bf16 ? launch_typed<__nv_bfloat16, 128>(p, max_shared_bytes, why)
                : launch_typed<__half, 128>(p, max_shared_bytes, why);
}

}  // namespace inf::cuda
