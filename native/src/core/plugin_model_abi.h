/*
 * The forward step of a Llama-family model on a plug-in device (plugin_abi.h: model_step). Plain C like
 * the rest of the plug-in ABI: the core owns the weights, the page pool and the workspace (device memory it
 * allocated through the plug-in) and describes one dense step with device pointers and shapes; the plug-in
 * runs every layer on the device and copies the logits to the host.
 *
 * Matrices are row-major [out][in] in weight_dtype (INF_DTYPE_F32 or INF_DTYPE_BF16); norm weights are
 * float32. Q/K/V are one matrix (rows: q, then k, then v) and so are gate/up (gate rows, then up rows), so
 * each takes one GEMM.
 */
#ifndef INFINITE_PLUGIN_MODEL_ABI_H
#define INFINITE_PLUGIN_MODEL_ABI_H

#include <stdint.h>

#include "attention/attention_params.h"
#include "infinite/infinite.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct inf_plugin_model_layer {
    const float* attn_norm; /* [dim] */
    const void* wqkv;       /* [q_heads * head_dim + 2 * kv_heads * head_dim][dim] */
    const void* wo;         /* [dim][q_heads * head_dim] */
    const float* ffn_norm;  /* [dim] */
    const void* w_gate_up;  /* [2 * ffn_dim][dim] */
    const void* w_down;     /* [dim][ffn_dim] */
    inf_kv_layer kv;        /* the pool's layer (kv_append and attention write / read it) */
} inf_plugin_model_layer;

typedef struct inf_plugin_model_step {
    /* sizeof(inf_plugin_model_step) in the core: fields are only ever appended, and a plug-in refuses a
     * description shorter than the one it was built with. */
    uint32_t size;
    int32_t reserved;
    /* The model. */
    int32_t vocab_size;
    int32_t dim;
    int32_t layers;
    int32_t q_heads;
    int32_t kv_heads;
    int32_t head_dim;
    int32_t ffn_dim;
    float norm_eps;
    int32_t rope_style;            /* inf_rope_style */
    inf_dtype weight_dtype;        /* INF_DTYPE_F32 or INF_DTYPE_BF16 */
    const void* token_embedding;   /* [vocab_size][dim], weight_dtype */
    const float* output_norm;      /* [dim] */
    const void* lm_head;           /* [vocab_size][dim], weight_dtype (token_embedding when tied) */
    const double* rope_inv_freq;   /* [head_dim / 2] (rope.h: scaling folded in) */
    const inf_plugin_model_layer* layer; /* [layers], host memory read during the call */

    /* The step (validated by the core: every index is in range). Device arrays unless noted. */
    int32_t sequences;
    int32_t tokens;
    int32_t logit_rows;
    int32_t max_q;                 /* longest q_starts[s + 1] - q_starts[s] */
    int32_t max_entries;           /* most page entries of one sequence */
    const int32_t* token_ids;      /* [tokens] */
    const int32_t* positions;      /* [tokens] */
    const int32_t* q_starts;       /* [sequences + 1] */
    const int32_t* kv_lengths;     /* [sequences] */
    const int32_t* page_starts;    /* [sequences + 1] */
    const int32_t* page_ids;       /* [page_starts[sequences]] */
    const int32_t* page_positions; /* [page_starts[sequences]]: first key position of each entry */
    const int32_t* token_pages;    /* [tokens]: the pool page each token's K/V goes to */
    const int32_t* token_slots;    /* [tokens]: its slot in that page */
    const int32_t* logit_tokens;   /* [logit_rows] */

    /* Scratch of model_step_workspace_bytes bytes (256-byte aligned), and the host output. */
    void* workspace;
    uint64_t workspace_bytes;
    float* logits;                 /* host [logit_rows][vocab_size] */
} inf_plugin_model_step;

#ifdef __cplusplus
}
#endif

#endif /* INFINITE_PLUGIN_MODEL_ABI_H */
