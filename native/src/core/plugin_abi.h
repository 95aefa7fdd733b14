/*
 * The interface between libinfinite.so and a backend plug-in loaded at run time (libinfinite_cuda.so).
 *
 * Plain C so that the two sides may come from different compilers (the plug-in is built by nvcc with
 * its own host compiler) and never share C++ types, exceptions or allocators. The plug-in exports one
 * function, INF_PLUGIN_ENTRY_NAME, returning a static table of function pointers for the ABI version
 * the core asks for (or NULL when it does not speak that version).
 *
 * Every function returns an inf_status. On failure it writes a zero-terminated message into error
 * (capacity error_capacity bytes) naming the call, the device and the runtime's error, e.g.
 * "cudaMalloc(1024 bytes) on cuda:0: cudaErrorMemoryAllocation: out of memory".
 * Functions other than init may be called from any thread, concurrently.
 */
#ifndef INFINITE_PLUGIN_ABI_H
#define INFINITE_PLUGIN_ABI_H

#include <stddef.h>
#include <stdint.h>

#include "attention/attention_params.h"
#include "core/plugin_model_abi.h"
#include "infinite/infinite.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped on every incompatible change of inf_plugin_api or inf_plugin_device_info. */
#define INF_PLUGIN_ABI_VERSION 3u

/* Name of the exported entry point, of type inf_plugin_get_fn. */
#define INF_PLUGIN_ENTRY_NAME "inf_cuda_plugin_get"

/* Room the core gives every error message. */
#define INF_PLUGIN_ERROR_CAPACITY 512

typedef struct inf_plugin_device_info {
    char name[INF_DEVICE_NAME_CAPACITY];
    uint64_t total_memory;
    uint64_t free_memory;
    int32_t compute_units;
    int32_t capability_major;
    int32_t capability_minor;
    int32_t reserved;
} inf_plugin_device_info;

typedef struct inf_plugin_api {
    /* INF_PLUGIN_ABI_VERSION the table was built with, and sizeof(inf_plugin_api) in the plug-in. */
    uint32_t abi_version;
    uint32_t size;
    /* Static text for logs, e.g. "CUDA runtime 11.8, archs 80;90". */
    const char* description;

    /* Loads the runtime and counts devices; called once, before anything else. A missing driver, a
     * driver older than the runtime or no device is INF_STATUS_BACKEND_UNAVAILABLE with the reason. */
    inf_status (*init)(int32_t* out_device_count, char* error, size_t error_capacity);
    inf_status (*device_info)(int32_t ordinal, inf_plugin_device_info* out_info, char* error,
                              size_t error_capacity);

    /* At least 256-byte aligned. deallocate may run on any thread (the plug-in selects the device). */
    inf_status (*allocate)(int32_t ordinal, uint64_t bytes, void** out_pointer, char* error, size_t error_capacity);
    inf_status (*deallocate)(int32_t ordinal, void* pointer, char* error, size_t error_capacity);

    /* Return when the copy is complete (host src may be reused, host dst holds the data). */
    inf_status (*copy_from_host)(int32_t ordinal, void* dst, const void* src, uint64_t bytes, char* error,
                                 size_t error_capacity);
    inf_status (*copy_to_host)(int32_t ordinal, void* dst, const void* src, uint64_t bytes, char* error,
                               size_t error_capacity);
    /* Within one device; the ranges may overlap. Ordered with later work on the device. */
    inf_status (*copy_within)(int32_t ordinal, void* dst, const void* src, uint64_t bytes, char* error,
                              size_t error_capacity);
    inf_status (*copy_peer)(int32_t dst_ordinal, void* dst, int32_t src_ordinal, const void* src, uint64_t bytes,
                            char* error, size_t error_capacity);

    /* count copies of the first pattern_bytes (1, 2, 4 or 8) bytes of pattern's representation from dst,
     * which may have any alignment. Ordered with later work on the device. */
    inf_status (*fill)(int32_t ordinal, void* dst, uint64_t pattern, uint32_t pattern_bytes, uint64_t count,
                       char* error, size_t error_capacity);
    inf_status (*synchronize)(int32_t ordinal, char* error, size_t error_capacity);

    /* ---- Appended after ABI version 1 first shipped (same version: the table only grew). The core
     * uses a field only when `size` covers it and it is non-null; otherwise the operation is
     * INF_STATUS_UNSUPPORTED. New fields go at the end, never in between. ---- */

    /* Paged-KV kernels (attention_params.h). The params and the arrays they point to are validated by
     * the core; the pointers inside are device addresses on ordinal, and the params structs themselves
     * (and merge's o_parts / lse_parts arrays) are host memory read during the call. All work is queued
     * on the device's legacy default stream (ordered with later copies), not waited for. */
    inf_status (*kv_append)(int32_t ordinal, const inf_kv_append_params* params, char* error, size_t error_capacity);
    /* Bytes of params->workspace that attention needs for params (split-KV partials); 0 when none.
     * Depends only on the shape fields of params (not on the data or the device pointers). */
    inf_status (*attention_workspace_bytes)(int32_t ordinal, const inf_attention_params* params,
                                            uint64_t* out_bytes, char* error, size_t error_capacity);
    inf_status (*attention)(int32_t ordinal, const inf_attention_params* params, char* error,
                            size_t error_capacity);
    inf_status (*attention_merge)(int32_t ordinal, const inf_attention_merge_params* params, char* error,
                                  size_t error_capacity);
    /* Page selection (inf_page_select_params): params->head_page_starts / head_page_indices are device
     * outputs, every other array a device input, like attention's. Bytes of params->workspace it can use
     * for scores; 0 means the plug-in keeps its own scratch (the CUDA plug-in does: the size depends on
     * page_starts[sequences], which only the device holds; it reads that one int back, so page_select
     * waits for earlier work on the device). */
    inf_status (*page_select_workspace_bytes)(int32_t ordinal, const inf_page_select_params* params,
                                              uint64_t* out_bytes, char* error, size_t error_capacity);
    inf_status (*page_select)(int32_t ordinal, const inf_page_select_params* params, char* error,
                              size_t error_capacity);
    /* A dense forward step of a Llama-family model (plugin_model_abi.h). workspace_bytes: the scratch
     * model_step needs for params; depends only on the shape fields (not on the pointers). model_step
     * queues every layer on the device's legacy default stream, then copies the logits to params->logits
     * and returns when they are there (with logit_rows 0 it returns once the work is queued). */
    inf_status (*model_step_workspace_bytes)(int32_t ordinal, const inf_plugin_model_step* params,
                                             uint64_t* out_bytes, char* error, size_t error_capacity);
    inf_status (*model_step)(int32_t ordinal, const inf_plugin_model_step* params, char* error,
                             size_t error_capacity);
} inf_plugin_api;

/* The size of a version-1 table before anything was appended: the least `size` the core accepts. */
#define INF_PLUGIN_API_MIN_SIZE (offsetof(inf_plugin_api, synchronize) + sizeof(void (*)(void)))

typedef const inf_plugin_api* (*inf_plugin_get_fn)(uint32_t abi_version);

#ifdef __cplusplus
}
#endif

#endif /* INFINITE_PLUGIN_ABI_H */
