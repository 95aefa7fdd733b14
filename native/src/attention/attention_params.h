/*
 * The kernel-level description of the paged-KV operations, shared by the core, the CPU kernels and
 * the CUDA plug-in (so plain C, C++17-compatible, no STL). All pointers are addresses on the device
 * that runs the kernel (host memory for the CPU backend); the core validates every index before a
 * kernel sees it, so kernels may trust them.
 *
 * Pool layout per layer (ARCHITECTURE.md): K and V are [pages][kv_heads][page_size][head_dim] of
 * dtype (int8 codes plus per-row scales for INF_DTYPE_I8, see k_scale); the summary is float32
 * [pages][kv_heads][page_size / logical_page_size][2][head_dim]
 * (elementwise min of the keys, then max), present when logical_page_size > 0.
 */
#ifndef INFINITE_ATTENTION_PARAMS_H
#define INFINITE_ATTENTION_PARAMS_H

#include <stdint.h>

#include "infinite/infinite.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One layer of a page pool. */
typedef struct inf_kv_layer {
    void* k;
    void* v;
    float* summary; /* NULL when logical_page_size == 0 */
    inf_dtype dtype;
    int32_t pages;
    int32_t kv_heads;
    int32_t head_dim;
    int32_t page_size;
    int32_t logical_page_size;
    /* Summary storage (inf_page_pool_config.summary_bits; 0 means 32). One page's summary block:
     * 32: float [kv_heads][subs][2][head_dim] (min, then max), subs = page_size / logical_page_size;
     * 16: bfloat16 bits (uint16) in the same order;
     *  8: int8 codes [kv_heads][subs][2][head_dim], then float scales [kv_heads][subs]: value = code * scale;
     *     an empty box is scale = +inf, min codes 127, max codes -127 (so min = +inf, max = -inf).
     * summary then points at bytes of that layout (cast), not floats, when summary_bits is 8 or 16. */
    int32_t summary_bits;
    /* INF_DTYPE_I8 only (NULL otherwise): float32 [pages][kv_heads][page_size], one scale per K (V) row;
     * element d of a row is k[...][d] * k_scale[...] (k and v then hold int8 codes). */
    float* k_scale;
    float* v_scale;
} inf_kv_layer;

/* Writes tokens' float32 keys and values [tokens][kv_heads][head_dim] to (pages[i], slots[i]) and
 * widens the summaries of the logical pages touched. A summary of a logical page whose first slot is
 * written (slot % logical_page_size == 0) restarts from that token, so reused pages need no reset. */
typedef struct inf_kv_append_params {
    inf_kv_layer layer;
    int32_t tokens;
    const int32_t* pages;
    const int32_t* slots;
    const float* k;
    const float* v;
} inf_kv_append_params;

/* One MicroAttention call over a batch of sequences (see inf_attention_batch in infinite.h, whose
 * arrays these are, copied to the device). */
typedef struct inf_attention_params {
    inf_kv_layer layer;
    int32_t sequences;
    int32_t q_heads;
    int32_t total_q;      /* q_starts[sequences] */
    int32_t max_q;        /* longest q_starts[s+1] - q_starts[s] */
    int32_t max_entries;  /* longest page list a (sequence, kv head) reads */
    float scale;
    inf_dtype q_dtype;    /* F32, or the pool's dtype */
    const void* q;        /* [total_q][q_heads][head_dim] */
    float* o;             /* [total_q][q_heads][head_dim] */
    float* lse;           /* [total_q][q_heads], natural log; -inf where no key is visible */
    const int32_t* q_starts;          /* [sequences + 1] */
    const int32_t* q_positions;       /* [total_q] */
    const int32_t* kv_lengths;        /* [sequences] */
    const int32_t* page_starts;       /* [sequences + 1] */
    const int32_t* page_ids;          /* [page_starts[sequences]] */
    const int32_t* page_positions;    /* [page_starts[sequences]]: first key position of each entry */
    const int32_t* head_page_starts;  /* [sequences * kv_heads + 1], or NULL: every head reads the table */
    const int32_t* head_page_indices; /* entry indices relative to page_starts[s] */
    int32_t head_lists_per_query_head; /* 1: head_page_starts has sequences * q_heads + 1 entries */
    const int32_t* streaming_heads;   /* [kv_heads] Λ-mask flags, or NULL: all heads dense */
    int32_t sink_tokens;              /* streaming heads see keys < sink_tokens ... */
    int32_t local_tokens;             /* ... or > q_position - local_tokens */
    void* workspace;                  /* scratch for split-KV partials, workspace_bytes long */
    uint64_t workspace_bytes;
} inf_attention_params;

/* Page selection for retrieval heads (inf_page_selection in infinite.h). Writes lists + 1 prefix offsets
 * into head_page_starts and the chosen entry indices (ascending, relative to page_starts[s]) into
 * head_page_indices; the core sized both (lists = sequences * (per_query_head ? q_heads : kv_heads), and
 * each list holds min(entries of its sequence, max(1, budget_tokens / page_size)) indices). */
typedef struct inf_page_select_params {
    inf_kv_layer layer;
    int32_t sequences;
    int32_t q_heads;
    inf_dtype q_dtype;
    int32_t budget_pages;     /* max(1, budget_tokens / page_size) */
    int32_t per_query_head;
    const void* q;            /* [rows][q_heads][head_dim] */
    const int32_t* q_rows;    /* [sequences] */
    const int32_t* kv_lengths;
    const int32_t* page_starts;
    const int32_t* page_ids;
    const int32_t* page_positions; /* always set by the core */
    int32_t* head_page_starts;     /* output, [lists + 1] */
    int32_t* head_page_indices;    /* output */
    void* workspace;               /* scratch for scores, workspace_bytes long */
    uint64_t workspace_bytes;
    /* Optional [kv_heads] flags: a nonzero KV head (a streaming head, which never reads a selection) is
     * not scored and its lists may come out empty. Backends may ignore it (its lists are then ordinary
     * selections). NULL: every head is scored. */
    const int32_t* skip_kv_heads;
} inf_page_select_params;

/* Merges parts partial results (o: [rows][head_dim], lse: [rows]) into o_out/lse_out (which may be
 * part 0's arrays). Exact, order-free, -inf safe: a row where every lse is -inf gets o = 0, lse = -inf. */
typedef struct inf_attention_merge_params {
    int32_t parts;
    int64_t rows;
    int32_t head_dim;
    const float* const* o_parts; /* [parts] device pointers (the array itself is host memory) */
    const float* const* lse_parts;
    float* o_out;
    float* lse_out;
} inf_attention_merge_params;

#ifdef __cplusplus
}
#endif

#endif /* INFINITE_ATTENTION_PARAMS_H */
