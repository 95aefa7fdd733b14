/*
 * Infinite: the C ABI of the native core.
 *
 * This header is the only thing bindings see. The C# P/Invoke declarations are
 * generated from it (bindings/, `./build.sh bindings`); never edit them by hand.
 *
 * Rules (see ARCHITECTURE.md, "The C ABI"):
 *  - Plain C. Opaque handles, created by inf_X_create(..., inf_X** out) and
 *    freed by inf_X_destroy.
 *  - Every function that can fail returns inf_status (0 = OK). The message of
 *    the last failure on the calling thread comes from inf_last_error().
 *  - No C++ exception ever crosses this boundary.
 *  - Argument structs are blittable and versioned: the first field is
 *    uint32_t size, set by the caller to sizeof(the struct it was built with);
 *    the library reads or writes only min(size, its own sizeof) bytes.
 *  - Handles are opaque values, not pointers: the library looks each one up,
 *    so a destroyed, foreign or garbage handle is INF_STATUS_INVALID_HANDLE.
 *  - A failed create call sets *out to null.
 *  - Bad input gets a status and a message that names the argument, never a crash.
 */
#ifndef INFINITE_INFINITE_H
#define INFINITE_INFINITE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#if defined(INFINITE_BUILDING_LIBRARY)
#define INF_API __declspec(dllexport)
#else
#define INF_API __declspec(dllimport)
#endif
#else
#define INF_API __attribute__((visibility("default")))
#endif

/* Version of this ABI. Bumped on every incompatible change; bindings refuse a library with another. */
#define INF_ABI_VERSION 4

/* Longest device name, including the terminating zero. */
#define INF_DEVICE_NAME_CAPACITY 128

/* Result of every fallible call. New codes are only ever appended. */
typedef enum inf_status {
    INF_STATUS_OK = 0,
    /* An argument's value is outside its domain; the message names the argument. */
    INF_STATUS_INVALID_ARGUMENT = 1,
    /* A required pointer argument (handle or out-pointer) is null. */
    INF_STATUS_NULL_POINTER = 2,
    /* A handle that is not live: already destroyed, or never created by this library. */
    INF_STATUS_INVALID_HANDLE = 3,
    /* An offset, size or index beyond its bound, or a size computation that overflows. */
    INF_STATUS_OUT_OF_RANGE = 4,
    /* An allocation failed on the device or host. */
    INF_STATUS_OUT_OF_MEMORY = 5,
    /* An argument lives on another device than the call requires. */
    INF_STATUS_DEVICE_MISMATCH = 6,
    /* A backend (the CUDA plug-in, its runtime or the driver) cannot be loaded; the message says which and why. */
    INF_STATUS_BACKEND_UNAVAILABLE = 7,
    /* The device reported an error (for CUDA: the runtime's error name and text). */
    INF_STATUS_DEVICE_ERROR = 8,
    /* The operation is not supported by this build or device. */
    INF_STATUS_UNSUPPORTED = 9,
    /* A bug in the library: an unexpected exception was caught at the boundary. */
    INF_STATUS_INTERNAL = 10,
    /* A communication did not complete within the communicator's timeout; the message names the peer and the
     * operation. */
    INF_STATUS_TIMEOUT = 11,
    /* A peer instance is gone (its communicator was destroyed or its process died) or sent a message that
     * breaks the protocol; the message names the peer. */
    INF_STATUS_PEER_FAILED = 12
} inf_status;

/* Kinds of device. The CPU device always exists; CUDA devices exist when the CUDA plug-in loads and a GPU is present. */
typedef enum inf_device_kind {
    INF_DEVICE_KIND_CPU = 0,
    INF_DEVICE_KIND_CUDA = 1
} inf_device_kind;

/* Severity of a native log line. */
typedef enum inf_log_level {
    INF_LOG_LEVEL_TRACE = 0,
    INF_LOG_LEVEL_DEBUG = 1,
    INF_LOG_LEVEL_INFO = 2,
    INF_LOG_LEVEL_WARNING = 3,
    INF_LOG_LEVEL_ERROR = 4,
    INF_LOG_LEVEL_NONE = 5
} inf_log_level;

/* Element type of KV storage and of query inputs. The CPU computes in float32 whatever the storage.
 * INF_DTYPE_I8 (KV storage only, CPU only): int8 codes with one float32 scale per (token, KV head) for K
 * and one for V: x = code * scale, scale = max|x| / 127 over the head's row, codes rounded to nearest
 * (error <= scale / 2 per element). Queries of an I8 pool are INF_DTYPE_F32; a pool of this dtype on a
 * CUDA device is INF_STATUS_UNSUPPORTED. */
typedef enum inf_dtype {
    INF_DTYPE_F32 = 0,
    INF_DTYPE_F16 = 1,
    INF_DTYPE_BF16 = 2,
    INF_DTYPE_I8 = 3
} inf_dtype;

/* CPU features the kernels dispatch on (inf_device_info.features, CPU devices only). */
typedef enum inf_cpu_feature {
    INF_CPU_FEATURE_AVX2 = 1,
    INF_CPU_FEATURE_FMA = 2,
    INF_CPU_FEATURE_AVX512F = 4,
    INF_CPU_FEATURE_AVX512BF16 = 8,
    INF_CPU_FEATURE_F16C = 16
} inf_cpu_feature;

/* A device: the CPU or one GPU. Thread-safe. */
typedef struct inf_device inf_device;

/* A block of memory on a device. It keeps its device alive. Not safe for concurrent writes. */
typedef struct inf_buffer inf_buffer;

/* A paged KV cache of one model shape on one device: per layer, K and V [pages][kv_heads][page_size][head_dim],
 * plus page summaries (key min/max per logical sub-page) for page selection. Reserved once at creation. */
typedef struct inf_page_pool inf_page_pool;

/* What a device is. Versioned: set size = sizeof(inf_device_info) before the call. */
typedef struct inf_device_info {
    uint32_t size;
    inf_device_kind kind;
    int32_t ordinal;
    /* CPU: logical cores the library uses; CUDA: streaming multiprocessors. */
    int32_t compute_units;
    /* Bytes of memory on the device, and bytes free at the time of the call. */
    uint64_t total_memory;
    uint64_t free_memory;
    /* CUDA compute capability (e.g. 9.0); 0.0 for the CPU. */
    int32_t capability_major;
    int32_t capability_minor;
    /* CPU: a set of inf_cpu_feature bits; CUDA: 0. */
    uint32_t features;
    uint32_t reserved;
    /* Zero-terminated UTF-8 name, e.g. "NVIDIA H100 80GB HBM3" or the CPU model. */
    char name[INF_DEVICE_NAME_CAPACITY];
} inf_device_info;

/* Counts of live objects, for leak checks. Versioned: set size = sizeof(inf_live_objects). */
typedef struct inf_live_objects {
    uint32_t size;
    uint32_t reserved;
    /* Live device handles (a destroyed device kept alive only by its buffers is not counted). */
    int64_t devices;
    int64_t buffers;
    /* Bytes held by live buffers, over all devices. */
    uint64_t buffer_bytes;
    int64_t page_pools;
    int64_t models;
    /* Live communicators and in-process communicator groups. */
    int64_t comms;
    int64_t comm_groups;
} inf_live_objects;

/* Shape of a page pool. Versioned: set size = sizeof(inf_page_pool_config). */
typedef struct inf_page_pool_config {
    uint32_t size;
    inf_dtype dtype;
    int32_t layers;
    int32_t kv_heads;
    /* A multiple of 8, at most 256 (64 and 128 are the tuned ones). */
    int32_t head_dim;
    /* Tokens per page: a power of two from 16 to 256. */
    int32_t page_size;
    /* Pages per layer. */
    int32_t pages;
    /* Tokens per summary sub-page: a power of two dividing page_size, or 0 for no summaries. */
    int32_t logical_page_size;
    /* Storage of the summaries (per logical page and KV head, the elementwise key min and max):
     * 0 or 32 = float32, exact (the default; a caller whose size ends before this field gets 32);
     * 16 = bfloat16, min rounded toward -inf and max toward +inf;
     * 8 = int8 with one float32 scale per (logical page, KV head), min rounded down and max up.
     * The stored box always contains the true min and max, so a page's selection score stays an upper
     * bound of q.k over its keys; 16 and 8 bits make the selector read 2x and ~4x fewer bytes. */
    int32_t summary_bits;
    /* Optional [layers]: the KV heads layer l stores, each 0 .. kv_heads (null, or a caller whose size ends
     * before this field: kv_heads in every layer). Layer l's K and V are then [pages][layer_kv_heads[l]]
     * [page_size][head_dim] (summaries and scales alike), so a pool that keeps only some heads of each layer
     * (LServe: the retrieval heads in the main pool, the streaming heads in a ring pool, inf_streaming_ring)
     * holds only their bytes. Appends, reads and attention on layer l take that many heads; a layer with 0
     * heads holds nothing and refuses them; not every layer may hold 0. Read during creation;
     * inf_page_pool_get_config returns the pool's own copy (valid while the pool lives), or null when every
     * layer holds kv_heads. Page migration (send/recv_pages) refuses a pool with fewer heads in some layer. */
    const int32_t* layer_kv_heads;
} inf_page_pool_config;

/* A batch of sequences for one MicroAttention call. All arrays are host memory, read during the call.
 * Sequence s owns query rows q_starts[s] .. q_starts[s+1]-1 (decode: 1 row; a prefill chunk: n rows).
 * A query at position p sees the keys at positions <= p that are < kv_lengths[s] (causal).
 * Entry j of sequence s (page_starts[s] <= j < page_starts[s+1]) is physical page page_ids[j], whose slot t
 * holds the key at position page_positions[j] + t (page_positions null: (j - page_starts[s]) * page_size).
 * With head_page_starts non-null, KV head h of sequence s reads only the entries
 * page_starts[s] + head_page_indices[i] for head_page_starts[s*kv_heads+h] <= i < head_page_starts[s*kv_heads+h+1]
 * (sparse heads, remote parts); otherwise every head reads all of its sequence's entries.
 * Versioned: set size = sizeof(inf_attention_batch). */
typedef struct inf_attention_batch {
    uint32_t size;
    int32_t sequences;
    int32_t q_heads;
    /* Element type of q: INF_DTYPE_F32 or the pool's dtype (INF_DTYPE_F32 only for an INF_DTYPE_I8 pool). */
    inf_dtype q_dtype;
    /* Softmax scale; 0 means 1/sqrt(head_dim). */
    float scale;
    int32_t reserved;
    const int32_t* q_starts;
    const int32_t* q_positions;
    const int32_t* kv_lengths;
    const int32_t* page_starts;
    const int32_t* page_ids;
    const int32_t* page_positions;
    const int32_t* head_page_starts;
    const int32_t* head_page_indices;
    /* 0: head_page_starts has sequences * kv_heads + 1 entries, one list per (sequence, KV head);
     * 1: sequences * q_heads + 1, one list per (sequence, query head) (per-query-head page selection). */
    int32_t head_lists_per_query_head;
    /* Λ mask (LServe streaming heads): optional [kv_heads] flags; a nonzero KV head sees, for a query at
     * position p, only keys at positions < sink_tokens or > p - local_tokens. Key tiles wholly outside that
     * band are skipped, so one call serves streaming and dense heads. Null: every head is dense. */
    const int32_t* streaming_heads;
    int32_t sink_tokens;
    int32_t local_tokens;
} inf_attention_batch;

/* Query-aware page selection for retrieval heads (LServe). For each sequence, the query row q_rows[s] scores
 * every entry of its page table: a logical page scores sum_i max(q_i * kmax_i, q_i * kmin_i) over its summary,
 * a physical page the max of its logical pages; per KV head lists take the max over the head's query heads.
 * The budget_tokens / page_size best entries are kept (at least one), the entry holding the newest key
 * (position kv_lengths[s] - 1) always among them; fewer entries than that: all are kept. Entries come out in
 * ascending order. Versioned: set size = sizeof(inf_page_selection). */
typedef struct inf_page_selection {
    uint32_t size;
    int32_t sequences;
    int32_t q_heads;
    /* Element type of q: INF_DTYPE_F32 or the pool's dtype (INF_DTYPE_F32 only for an INF_DTYPE_I8 pool). */
    inf_dtype q_dtype;
    int32_t budget_tokens;
    /* 0: one list per (sequence, KV head); 1: one list per (sequence, query head). */
    int32_t per_query_head;
    /* [sequences]: the row of q that scores each sequence's pages. */
    const int32_t* q_rows;
    const int32_t* kv_lengths;
    const int32_t* page_starts;
    const int32_t* page_ids;
    /* Optional [page_starts[sequences]]: first key position of each entry, as in inf_attention_batch. */
    const int32_t* page_positions;
} inf_page_selection;

/* ---- communicator types (distributed KV) --------------------------------- */

/* One instance's endpoint in a group of instances that exchange queries, partial results and KV pages.
 * Ranks are 0 .. size-1. Thread-safe: sends and receives may come from several threads. */
typedef struct inf_comm inf_comm;

/* The shared state of the instances of one process (in-process communicators). */
typedef struct inf_comm_group inf_comm_group;

typedef enum inf_comm_kind {
    /* Instances in one process; messages are copied through memory. */
    INF_COMM_KIND_INPROC = 0,
    /* One instance per process under mpirun, host memory (libinfinite_mpi.so, loaded at run time). */
    INF_COMM_KIND_MPI = 1,
    /* GPUs, device memory (libnccl.so.2, loaded at run time; bootstrapped over another communicator). */
    INF_COMM_KIND_NCCL = 2
} inf_comm_kind;

/* What a communicator is. Versioned: set size = sizeof(inf_comm_info). */
typedef struct inf_comm_info {
    uint32_t size;
    inf_comm_kind kind;
    int32_t rank;
    int32_t group_size;
    /* Receives (and a send's wait for buffer space) fail with INF_STATUS_TIMEOUT after this long. */
    int32_t timeout_ms;
    int32_t reserved;
    /* Bytes and messages sent and received since creation (the figures of the exchange benchmarks). */
    uint64_t bytes_sent;
    uint64_t bytes_received;
    uint64_t messages_sent;
    uint64_t messages_received;
} inf_comm_info;

/* The distributed part of a step (DistAttention across instances). A sequence's KV pages may live on several
 * instances. Its home instance (the one whose plan lists the sequence) runs its non-attention layers and
 * attends over its local pages; for each peer that holds more of its pages (a remote part), the home sends,
 * in every layer, the sequence's query rows (and, when some of this step's tokens are stored there, their
 * K and V rows); the peer appends those rows, runs one MicroAttention over all the parts it serves and sends
 * back (o, lse), which the home merges into its own. KV never moves during attention. With plan->sparse, a
 * served part applies the Λ mask of the layer's streaming heads (decode windows for a part of one row, prefill
 * windows otherwise), and a decode that selects pages has its pages scored where they live: each peer sends
 * the home its pages' scores, the home keeps the global top budget pages (as one instance would) and tells
 * each peer which of its pages to read.
 *
 * Every instance of the group calls inf_model_step for the same step_id, concurrently (each with its own plan;
 * an instance with no sequences of its own still calls it when it serves parts). Sends never wait for the
 * receiver, so no order of arrival deadlocks; a receive waits at most the communicator's timeout.
 * Versioned: set size = sizeof(inf_step_exchange). */
typedef struct inf_step_exchange {
    uint32_t size;
    int32_t reserved;
    inf_comm* comm;
    /* The same on every instance for one step, increasing from step to step: messages carry it, so a message
     * left over from a failed step is recognised and dropped (a failed step is re-run under a new, greater id;
     * a peer's message of a greater id than this step's is INF_STATUS_PEER_FAILED). */
    int64_t step_id;
    /* Home side: parts of this plan's sequences whose pages live on peers, grouped by peer rank (ascending),
     * within one rank in ascending sequence order. */
    int32_t remote_parts;
    int32_t reserved2;
    const int32_t* remote_sequences;
    const int32_t* remote_ranks;
    /* [remote_parts] nonzero: the sequence's K and V rows of this step travel with its query rows, because the
     * peer stores some of them. Null: no part sends K and V. */
    const int32_t* remote_sends_kv;
    /* Serving side: parts of peers' sequences whose pages live here, grouped by the home's rank (ascending),
     * within one rank in the order of that rank's remote parts. Part i has query rows
     * served_q_starts[i] .. served_q_starts[i+1]-1 at served_positions[...] (the sequence's tokens this step),
     * sees the keys < served_kv_lengths[i] in pages served_page_ids[served_page_starts[i] .. +1] whose first
     * positions are served_page_positions[...] (multiples of the page size). */
    int32_t served_parts;
    int32_t reserved3;
    const int32_t* served_ranks;
    const int32_t* served_q_starts;
    const int32_t* served_positions;
    const int32_t* served_kv_lengths;
    const int32_t* served_page_starts;
    const int32_t* served_page_ids;
    const int32_t* served_page_positions;
    /* [served_parts] nonzero where the home sends K and V rows (must match its remote_sends_kv); null: none does.
     * Every key position of a sequence lives on exactly one instance (its home's table or one served part). */
    const int32_t* served_receives_kv;
    /* [served rows] (null when no part receives K and V): the page that stores each row's K and V here
     * (slot = position % page_size), or -1 when the row is stored elsewhere. */
    const int32_t* served_append_pages;
} inf_step_exchange;

/* ---- model types -------------------------------------------------------- */

/* A Llama-family model's weights on one device. Thread-safe for concurrent steps on different page pools. */
typedef struct inf_model inf_model;

/* Storage type of a weight tensor as it lies in the model file. */
typedef enum inf_tensor_type {
    INF_TENSOR_TYPE_F32 = 0,
    INF_TENSOR_TYPE_F16 = 1,
    INF_TENSOR_TYPE_BF16 = 2,
    /* GGUF Q8_0: blocks of 32 int8 with one f16 scale (34 bytes per block), along the innermost dimension. */
    INF_TENSOR_TYPE_Q8_0 = 3
} inf_tensor_type;

/* How RoPE pairs the elements of a head: INTERLEAVED rotates (2i, 2i+1) (GGUF llama files, whose q/k rows are
 * permuted by their converter); HALF rotates (i, i + head_dim/2) (Hugging Face checkpoints). */
typedef enum inf_rope_style {
    INF_ROPE_STYLE_INTERLEAVED = 0,
    INF_ROPE_STYLE_HALF = 1
} inf_rope_style;

/* RoPE frequency scaling: NONE; LINEAR divides positions by factor; LLAMA3 is Llama 3.1's piecewise rule
 * (factor, low_freq_factor, high_freq_factor, original_context). */
typedef enum inf_rope_scaling {
    INF_ROPE_SCALING_NONE = 0,
    INF_ROPE_SCALING_LINEAR = 1,
    INF_ROPE_SCALING_LLAMA3 = 2
} inf_rope_scaling;

/* Shape and hyper-parameters of a Llama-family model. Versioned: set size = sizeof(inf_model_config). */
typedef struct inf_model_config {
    uint32_t size;
    int32_t vocab_size;
    int32_t dim;
    int32_t layers;
    int32_t q_heads;
    int32_t kv_heads;
    int32_t head_dim;
    int32_t ffn_dim;
    /* Nonzero: the LM head is the token embedding (no output.weight tensor). */
    int32_t tied_embeddings;
    float norm_eps;
    float rope_theta;
    inf_rope_style rope_style;
    inf_rope_scaling rope_scaling;
    float rope_factor;
    float rope_low_freq_factor;
    float rope_high_freq_factor;
    int32_t rope_original_context;
} inf_model_config;

/* One weight tensor, named as in GGUF: token_embd.weight, output_norm.weight, output.weight,
 * blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm, ffn_gate, ffn_up, ffn_down}.weight.
 * shape is row-major, outermost first: a linear layer's weight is [out_features][in_features].
 * Versioned: set size = sizeof(inf_tensor). */
typedef struct inf_tensor {
    uint32_t size;
    inf_tensor_type type;
    /* Zero-terminated UTF-8. */
    const char* name;
    int32_t dims;
    int32_t reserved;
    int64_t shape[4];
    /* Host memory (typically a memory-mapped file) of exactly bytes bytes. On the CPU an F32 tensor is used
     * in place, so its memory must stay valid until inf_model_destroy; other types are converted at load. */
    const void* data;
    uint64_t bytes;
} inf_tensor;

/* Load progress: done of total bytes of weights prepared. Called on the loading thread. */
typedef void (*inf_progress_callback)(void* user_data, uint64_t done, uint64_t total);

/* Streaming heads stored as a ring of pages (LServe): a streaming head only ever reads the sink keys and the
 * recent ones, so its older keys need no memory. With a ring, the step's pool holds in layer l only the
 * retrieval heads of layer l (its layer_kv_heads[l] = the count of zero streaming_heads flags of layer l, in
 * head order) and pool holds only the streaming heads (layer_kv_heads[l] = the count of nonzero flags); both
 * have the model's kv_heads and head_dim. Sequence s owns the ring entries ring_pages[ring_starts[s] ..
 * ring_starts[s+1]-1] of pool (distinct pages, one ring per sequence, fixed for its life): with P = pool's
 * page size, sink_pages = ceil(max(decode_sink_tokens, prefill_sink_tokens) / P) and local_pages = the rest,
 * the key at position p lives in entry p / P when p / P < sink_pages, else in entry
 * sink_pages + (p / P - sink_pages) % local_pages, slot p % P. The ring must hold the step's window: a decode
 * row needs local_pages >= ceil((decode_local_tokens - 1) / P) + 1, a chunk of n tokens
 * ceil((prefill_local_tokens + n - 2) / P) + 1 (refused otherwise, naming the sequence and the sizes).
 * Not supported with plan->exchange or on a non-CPU device (INF_STATUS_UNSUPPORTED).
 * Versioned: set size = sizeof(inf_streaming_ring). */
typedef struct inf_streaming_ring {
    uint32_t size;
    int32_t reserved;
    inf_page_pool* pool;
    /* [sequences + 1] prefix offsets into ring_pages. */
    const int32_t* ring_starts;
    const int32_t* ring_pages;
} inf_streaming_ring;

/* Sparse attention for one step (LServe). Versioned: set size = sizeof(inf_sparse_step). */
typedef struct inf_sparse_step {
    uint32_t size;
    /* Optional [layers][kv_heads] flags: nonzero marks a streaming head (Λ mask); null: none. */
    const int32_t* streaming_heads;
    /* Λ windows in tokens, for decode rows (one query row) and for prefill chunks. */
    int32_t decode_sink_tokens;
    int32_t decode_local_tokens;
    int32_t prefill_sink_tokens;
    int32_t prefill_local_tokens;
    /* Retrieval heads of decode rows whose kv_length exceeds budget_tokens read only selected pages;
     * 0 disables selection (dense retrieval heads). */
    int32_t budget_tokens;
    /* 0: one page list per (sequence, KV head); 1: per (sequence, query head). */
    int32_t per_query_head;
    /* Reusable selection (LServe): selections live in the caller's selection_store, slot selection_slots[s]
     * for sequence s (slot_ints int32 per slot); reselect[s] nonzero recomputes and stores it this step,
     * zero reuses the stored one. Both arrays [sequences]; null selection_store: select every step.
     * On the CPU a slot holds, for each layer l and list i (lists = kv_heads, or q_heads per query head),
     * at ints (l * lists + i) * (1 + budget_pages): a count, then that many ascending entry indices, with
     * budget_pages = max(1, budget_tokens / page_size); so slot_ints >= layers * lists * (1 + budget_pages).
     * With a ring, layer l's lists are its retrieval heads' in head order (the first retrieval-head-count lists,
     * times q_heads / kv_heads per query head), indexing the step's pool as it holds them. */
    int32_t* selection_store;
    int64_t slot_ints;
    const int32_t* selection_slots;
    const int32_t* reselect;
    /* Optional (null: streaming heads live in the step's pool like every head): streaming heads' KV in a ring
     * of pages per sequence (see inf_streaming_ring), so their memory stays constant however long the context. */
    const inf_streaming_ring* ring;
} inf_sparse_step;

/* One forward step for a batch of sequences: prefill chunks and decodes mixed. All arrays are host memory.
 * Sequence s feeds tokens q_starts[s] .. q_starts[s+1]-1 at positions[...] (consecutive, ending at
 * kv_lengths[s] - 1); its page table is page_ids[page_starts[s] .. page_starts[s+1]-1] (entry j holds positions
 * j * page_size ..). The step appends the tokens' K and V of every layer into the pool at (page, slot) from that
 * table, then attends causally over kv_lengths[s] keys. Logits are returned for the logit_rows tokens listed in
 * logit_tokens (indices into the step's tokens). Versioned: set size = sizeof(inf_step_plan). */
typedef struct inf_step_plan {
    uint32_t size;
    int32_t sequences;
    int32_t tokens;
    int32_t logit_rows;
    const int32_t* token_ids;
    const int32_t* positions;
    const int32_t* q_starts;
    const int32_t* kv_lengths;
    const int32_t* page_starts;
    const int32_t* page_ids;
    const int32_t* logit_tokens;
    /* Null: dense attention. */
    const inf_sparse_step* sparse;
    /* Optional [page_starts[sequences]]: first position of each entry's keys (multiples of the page size,
     * ascending within a sequence); null: entry j holds positions j * page_size ... With an exchange, a
     * sequence's table lists only its pages on this instance, and a token whose position no entry covers is
     * stored by the peer of a remote part that sends K and V. */
    const int32_t* page_positions;
    /* Null: every page is local (one instance). With sparse: streaming heads apply the Λ mask on every
     * instance (positions are absolute); page selection takes a global top-k at the home every step (a non-null
     * selection_store with a selecting sequence or served part is INF_STATUS_UNSUPPORTED). */
    const inf_step_exchange* exchange;
} inf_step_plan;

/* Receives one complete log line (no trailing newline). May be called from any thread, concurrently. */
typedef void (*inf_log_callback)(void* user_data, inf_log_level level, const char* message);

/* ---- library ---------------------------------------------------------- */

/* INF_ABI_VERSION of the loaded library. */
INF_API uint32_t inf_abi_version(void);

/* Version of the library, e.g. "0.1.0". Static storage. */
INF_API const char* inf_version(void);

/* How the library was built: compiler, CUDA plug-in, MPI, CPU kernels. Static storage. */
INF_API const char* inf_build_info(void);

/* The message of the last failed call on this thread, or "" if none failed yet.
 * Valid until the next failing call on this thread. */
INF_API const char* inf_last_error(void);

/* The name of a status code, e.g. "INF_STATUS_OUT_OF_RANGE"; "INF_STATUS_UNKNOWN" for others. Static storage. */
INF_API const char* inf_status_name(inf_status status);

/* Routes native log lines to callback (null: back to stderr). user_data is passed through untouched. */
INF_API inf_status inf_set_log_callback(inf_log_callback callback, void* user_data);

/* Lines below level are not formatted nor delivered. Default INF_LOG_LEVEL_WARNING. */
INF_API inf_status inf_set_log_level(inf_log_level level);

/* Counts of live devices and buffers. */
INF_API inf_status inf_get_live_objects(inf_live_objects* out_objects);

/* ---- devices ---------------------------------------------------------- */

/* Loads the backend for kind. OK when it is usable; otherwise INF_STATUS_BACKEND_UNAVAILABLE and a
 * message naming the library and the reason (not built, missing runtime, driver too old, no GPU). */
INF_API inf_status inf_backend_load(inf_device_kind kind);

/* Number of devices of kind: 1 for the CPU; 0 when the CUDA backend is unavailable. */
INF_API inf_status inf_device_count(inf_device_kind kind, int32_t* out_count);

/* Describes device ordinal of kind without creating it. */
INF_API inf_status inf_device_get_info(inf_device_kind kind, int32_t ordinal, inf_device_info* out_info);

/* Opens device ordinal of kind. */
INF_API inf_status inf_device_create(inf_device_kind kind, int32_t ordinal, inf_device** out_device);

/* Releases the handle. Buffers still alive keep the device's memory until they are destroyed.
 * A null device is a no-op that returns OK. */
INF_API inf_status inf_device_destroy(inf_device* device);

/* Describes an open device (free memory as of now). */
INF_API inf_status inf_device_query(inf_device* device, inf_device_info* out_info);

/* Waits until all work queued on the device is done. */
INF_API inf_status inf_device_synchronize(inf_device* device);

/* ---- buffers ---------------------------------------------------------- */

/* Allocates bytes (> 0) on device, aligned to at least 256 bytes. Contents are undefined. */
INF_API inf_status inf_buffer_create(inf_device* device, uint64_t bytes, inf_buffer** out_buffer);

/* Frees the buffer. A null buffer is a no-op that returns OK. Safe from any thread. */
INF_API inf_status inf_buffer_destroy(inf_buffer* buffer);

/* Size in bytes. */
INF_API inf_status inf_buffer_size(const inf_buffer* buffer, uint64_t* out_bytes);

/* The kind and ordinal of the device the buffer lives on. */
INF_API inf_status inf_buffer_location(const inf_buffer* buffer, inf_device_kind* out_kind, int32_t* out_ordinal);

/* Copies bytes from host memory src into the buffer at dst_offset. Returns when src may be reused. */
INF_API inf_status inf_buffer_write(inf_buffer* dst, uint64_t dst_offset, const void* src, uint64_t bytes);

/* Copies bytes from the buffer at src_offset into host memory dst. Returns when dst holds the data. */
INF_API inf_status inf_buffer_read(const inf_buffer* src, uint64_t src_offset, void* dst, uint64_t bytes);

/* Copies bytes between buffers on the same or different devices. Overlapping ranges of one buffer are allowed.
 * On CUDA a device-to-device copy is queued: later reads see it; inf_device_synchronize waits for it. */
INF_API inf_status inf_buffer_copy(inf_buffer* dst, uint64_t dst_offset, const inf_buffer* src, uint64_t src_offset,
                                   uint64_t bytes);

/* Writes count copies of a pattern of pattern_bytes (1, 2, 4 or 8) starting at dst_offset,
 * e.g. a NaN bit pattern to poison outputs before a kernel runs. Queued on CUDA, like inf_buffer_copy. */
INF_API inf_status inf_buffer_fill(inf_buffer* dst, uint64_t dst_offset, const void* pattern, uint32_t pattern_bytes,
                                   uint64_t count);

/* ---- page pools (paged KV cache) --------------------------------------- */

/* Reserves a pool of config's shape on device (all memory at once; none on the hot path). */
INF_API inf_status inf_page_pool_create(inf_device* device, const inf_page_pool_config* config,
                                        inf_page_pool** out_pool);

/* Frees the pool. A null pool is a no-op that returns OK. */
INF_API inf_status inf_page_pool_destroy(inf_page_pool* pool);

/* The pool's shape. */
INF_API inf_status inf_page_pool_get_config(const inf_page_pool* pool, inf_page_pool_config* out_config);

/* Bytes of device memory the pool holds (K, V and summaries, all layers). */
INF_API inf_status inf_page_pool_bytes(const inf_page_pool* pool, uint64_t* out_bytes);

/* Stores tokens' keys and values of one layer: k and v are float32 [tokens][kv_heads][head_dim] in host
 * memory (kv_heads: the layer's, config.layer_kv_heads[layer] when given); token i goes to slot slots[i] of page pages[i]. Keys are stored as given (post-RoPE). The summaries
 * of the logical pages touched are updated; writing slot 0 of a logical page restarts its summary. */
INF_API inf_status inf_page_pool_append(inf_page_pool* pool, int32_t layer, int32_t tokens, const int32_t* pages,
                                        const int32_t* slots, const float* k, const float* v);

/* Reads one page of one layer as float32 [kv_heads][page_size][head_dim] (the layer's kv_heads) into host k_out and
 * v_out. */
INF_API inf_status inf_page_pool_read_page(const inf_page_pool* pool, int32_t layer, int32_t page, float* k_out,
                                           float* v_out);

/* Reads one page's summary as float32 [kv_heads][page_size / logical_page_size][2][head_dim] (min, then max)
 * into host memory. INF_STATUS_UNSUPPORTED when the pool keeps no summaries. */
INF_API inf_status inf_page_pool_read_summary(const inf_page_pool* pool, int32_t layer, int32_t page,
                                              float* summary_out);

/* Copies count pages (every layer: K, V and summaries) from src_pages of src to dst_pages of dst. The pools
 * must have the same shape and dtype and may live on different devices: the primitive of migration. */
INF_API inf_status inf_page_pool_copy_pages(inf_page_pool* dst, const int32_t* dst_pages, const inf_page_pool* src,
                                            const int32_t* src_pages, int32_t count);

/* ---- attention -------------------------------------------------------- */

/* MicroAttention of one layer over batch (see inf_attention_batch). q: [total_q][q_heads][head_dim] of
 * batch->q_dtype; o: float32 [total_q][q_heads][head_dim]; lse: float32 [total_q][q_heads], natural log.
 * Query head g reads KV head g / (q_heads / kv_heads). A query that sees no key gets o = 0, lse = -inf.
 * All three buffers live on the pool's device. Long sequences are split across cores / SMs and merged. */
INF_API inf_status inf_attention_run(inf_page_pool* pool, int32_t layer, const inf_attention_batch* batch,
                                     const inf_buffer* q, inf_buffer* o, inf_buffer* lse);

/* Selects pages for retrieval heads (see inf_page_selection). q: [rows][q_heads][head_dim] on the pool's device.
 * Writes lists in the form inf_attention_batch takes: out_head_page_starts gets lists + 1 prefix offsets
 * (lists = sequences * kv_heads, or sequences * q_heads when per_query_head) and out_head_page_indices the entry
 * indices (relative to each sequence's page_starts), at most index_capacity of them; both host memory.
 * INF_STATUS_UNSUPPORTED when the pool keeps no summaries. */
INF_API inf_status inf_page_select(const inf_page_pool* pool, int32_t layer, const inf_page_selection* selection,
                                   const inf_buffer* q, int32_t* out_head_page_starts, int32_t* out_head_page_indices,
                                   int64_t index_capacity);

/* Merges parts partial results into one: o_parts[i] float32 [rows][head_dim], lse_parts[i] float32 [rows]
 * (rows = tokens * heads), all on one device; o_out and lse_out may be o_parts[0] and lse_parts[0].
 * s = log(sum_i e^s_i), o = sum_i e^(s_i - s) o_i: exact, associative, commutative, -inf safe. */
INF_API inf_status inf_attention_merge(int32_t parts, const inf_buffer* const* o_parts,
                                       const inf_buffer* const* lse_parts, int64_t rows, int32_t head_dim,
                                       inf_buffer* o_out, inf_buffer* lse_out);

/* ---- communicators ------------------------------------------------------ */

/* A group of group_size in-process instances (1 .. 1024); each takes its endpoint with inf_comm_create_inproc. */
INF_API inf_status inf_comm_group_create(int32_t group_size, inf_comm_group** out_group);

/* Frees the group. Endpoints still alive keep its state until they are destroyed. */
INF_API inf_status inf_comm_group_destroy(inf_comm_group* group);

/* The endpoint of rank in group (each rank at most once while it lives). Destroying it tells the others that
 * the rank is gone: their receives from it, and sends to it, fail at once with INF_STATUS_PEER_FAILED. */
INF_API inf_status inf_comm_create_inproc(inf_comm_group* group, int32_t rank, inf_comm** out_comm);

/* The endpoint of this process under mpirun (MPI_COMM_WORLD; MPI is initialised here if it is not yet, and
 * finalised when the last MPI endpoint is destroyed). INF_STATUS_BACKEND_UNAVAILABLE, naming the library and
 * the reason, when the MPI plug-in or libmpi cannot be loaded. */
INF_API inf_status inf_comm_create_mpi(inf_comm** out_comm);

/* A NCCL communicator over the same ranks as bootstrap (rank 0 makes the unique id and sends it over
 * bootstrap), for buffers on device (a CUDA device). INF_STATUS_BACKEND_UNAVAILABLE when libnccl.so.2 or the
 * CUDA backend cannot be loaded. */
INF_API inf_status inf_comm_create_nccl(inf_comm* bootstrap, inf_device* device, inf_comm** out_comm);

/* Frees the endpoint. A null comm is a no-op that returns OK. */
INF_API inf_status inf_comm_destroy(inf_comm* comm);

INF_API inf_status inf_comm_get_info(const inf_comm* comm, inf_comm_info* out_info);

/* Receive timeout in milliseconds (> 0; default 30000). */
INF_API inf_status inf_comm_set_timeout(inf_comm* comm, int32_t timeout_ms);

/* Sends bytes of host memory to peer with tag (0 .. 32767; tags >= 16384 are reserved for the library).
 * Returns once data may be reused; never waits for the receiver to post a receive. bytes may be 0. */
INF_API inf_status inf_comm_send(inf_comm* comm, int32_t peer, int32_t tag, const void* data, uint64_t bytes);

/* Receives the next message from peer with tag into host memory (capacity bytes); its length goes to
 * out_bytes. Messages of one (peer, tag) arrive in the order sent. A message longer than capacity is
 * INF_STATUS_OUT_OF_RANGE naming both lengths and stays queued; use inf_comm_probe to size the buffer. */
INF_API inf_status inf_comm_recv(inf_comm* comm, int32_t peer, int32_t tag, void* data, uint64_t capacity,
                                 uint64_t* out_bytes);

/* Waits (up to the timeout) for the next message from peer with tag and returns its length, leaving it queued. */
INF_API inf_status inf_comm_probe(inf_comm* comm, int32_t peer, int32_t tag, uint64_t* out_bytes);

/* Sends / receives bytes of a buffer (host or device memory; device buffers need a NCCL communicator or are
 * staged through host memory). recv's bytes must equal the message's length. */
INF_API inf_status inf_comm_send_buffer(inf_comm* comm, int32_t peer, int32_t tag, const inf_buffer* buffer,
                                        uint64_t offset, uint64_t bytes);
INF_API inf_status inf_comm_recv_buffer(inf_comm* comm, int32_t peer, int32_t tag, inf_buffer* buffer,
                                        uint64_t offset, uint64_t bytes);

/* Page migration between instances: sends count pages (every layer's K and V, scales and summaries) of pool
 * to peer; the peer stores them with inf_page_pool_recv_pages into pages of its pool, which must have the same
 * shape and dtype (checked: a mismatch is INF_STATUS_INVALID_ARGUMENT on the receiver naming the field). */
INF_API inf_status inf_page_pool_send_pages(inf_comm* comm, int32_t peer, int32_t tag, const inf_page_pool* pool,
                                            const int32_t* pages, int32_t count);
INF_API inf_status inf_page_pool_recv_pages(inf_comm* comm, int32_t peer, int32_t tag, inf_page_pool* pool,
                                            const int32_t* pages, int32_t count);

/* ---- model -------------------------------------------------------------- */

/* Builds a model on device from tensors (every tensor the config needs, each with its expected shape; extra
 * tensors are an error naming them). Reports progress through progress (may be null). Checks every shape and
 * byte count against the config and names the first tensor that disagrees. */
INF_API inf_status inf_model_create(inf_device* device, const inf_model_config* config, const inf_tensor* tensors,
                                    int32_t tensor_count, inf_progress_callback progress, void* user_data,
                                    inf_model** out_model);

INF_API inf_status inf_model_destroy(inf_model* model);

/* Bytes of weights the model holds itself (converted or uploaded copies; F32 used in place is not counted). */
INF_API inf_status inf_model_bytes(const inf_model* model, uint64_t* out_bytes);

/* Runs one step (see inf_step_plan) over pool, whose layers, kv_heads and head_dim must match the model and
 * which must live on the model's device. logits: host float32 [logit_rows][vocab_size]. */
INF_API inf_status inf_model_step(inf_model* model, inf_page_pool* pool, const inf_step_plan* plan, float* logits);

#ifdef __cplusplus
}
#endif

#endif /* INFINITE_INFINITE_H */
