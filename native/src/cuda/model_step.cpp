#include "cuda/model_step.h"

#include <cuda_runtime_api.h>
#include <library_types.h>

#include <cmath>
#include <mutex>

#include "cuda/cublas_loader.h"
#include "cuda/model_kernels.h"

namespace inf::cuda {

namespace {

constexpr std::uint64_t kAlign = 256;
constexpr int kMaxDevices = 64;

std::uint64_t align_up(std::uint64_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }

// Byte offsets of the step's arrays in the workspace (T tokens, R logit rows, e bytes per GEMM input):
//   x f32 [T][dim] (the residual stream), xn e [T][dim], qkv f32 [T][q+2kv], q f32 [T][q], k, v f32 [T][kv],
//   o f32 [T][q], lse f32 [T][q_heads], o_in e [T][q] (bf16 only), gate_up f32 [T][2 ffn], act e [T][ffn],
//   head e [R][dim], logits f32 [R][vocab], then attention's split-KV partials.
struct Layout {
    std::uint64_t x, xn, qkv, q, k, v, o, lse, o_in, gate_up, act, head, logits, attention;
    std::uint64_t attention_bytes;
    std::uint64_t total;
};

inf_attention_params attention_shape(const inf_plugin_model_step& p, std::int32_t layer) {
    inf_attention_params a{};
    a.layer = p.layer[layer].kv;
    a.sequences = p.sequences;
    a.q_heads = p.q_heads;
    a.total_q = p.tokens;
    a.max_q = p.max_q;
    a.max_entries = p.max_entries;
    a.scale = 1.0f / std::sqrt(static_cast<float>(p.head_dim));  // as the CPU step
    a.q_dtype = INF_DTYPE_F32;
    return a;
}

Layout layout_of(const inf_plugin_model_step& p, int sm_count) {
    const auto tokens = static_cast<std::uint64_t>(p.tokens > 0 ? p.tokens : 0);
    const auto rows = static_cast<std::uint64_t>(p.logit_rows > 0 ? p.logit_rows : 0);
    const std::uint64_t e = p.weight_dtype == INF_DTYPE_BF16 ? 2 : 4;
    const auto dim = static_cast<std::uint64_t>(p.dim);
    const std::uint64_t qw = static_cast<std::uint64_t>(p.q_heads) * static_cast<std::uint64_t>(p.head_dim);
    const std::uint64_t kw = static_cast<std::uint64_t>(p.kv_heads) * static_cast<std::uint64_t>(p.head_dim);
    const auto ffn = static_cast<std::uint64_t>(p.ffn_dim);
    Layout l{};
    std::uint64_t offset = 0;
    const auto take = [&offset](std::uint64_t bytes) {
        const std::uint64_t at = offset;
        offset += align_up(bytes);
        return at;
    };
    l.x = take(tokens * dim * 4);
    l.xn = take(tokens * dim * e);
    l.qkv = take(tokens * (qw + 2 * kw) * 4);
    l.q = take(tokens * qw * 4);
    l.k = take(tokens * kw * 4);
    l.v = take(tokens * kw * 4);
    l.o = take(tokens * qw * 4);
    l.lse = take(tokens * static_cast<std::uint64_t>(p.q_heads) * 4);
    l.o_in = take(e == 2 ? tokens * qw * 2 : 0);
    l.gate_up = take(tokens * 2 * ffn * 4);
    l.act = take(tokens * ffn * e);
    l.head = take(rows * dim * e);
    l.logits = take(rows * static_cast<std::uint64_t>(p.vocab_size) * 4);
    l.attention_bytes = p.layers > 0 && p.layer != nullptr && p.tokens > 0
                            ? plan_attention(attention_shape(p, 0), sm_count).workspace_bytes
                            : 0;
    l.attention = take(l.attention_bytes);
    l.total = offset;
    return l;
}

inf_status status_of_cublas(cublasStatus_t status) {
    switch (status) {
        case CUBLAS_STATUS_ALLOC_FAILED: return INF_STATUS_OUT_OF_MEMORY;
        case CUBLAS_STATUS_NOT_INITIALIZED: return INF_STATUS_BACKEND_UNAVAILABLE;
        case CUBLAS_STATUS_ARCH_MISMATCH:
        case CUBLAS_STATUS_NOT_SUPPORTED: return INF_STATUS_UNSUPPORTED;
        default: return INF_STATUS_DEVICE_ERROR;
    }
}

// One cuBLAS handle per device, made on first use and kept for the process (like the plug-in). The mutex
// is held for a whole step: steps on one device share its one stream anyway, and the handle's internal
// workspace then has one user at a time.
struct DeviceBlas {
    std::mutex mutex;
    cublasHandle_t handle = nullptr;
};
DeviceBlas g_blas[kMaxDevices];

// The state one step threads through its helpers.
struct Step {
    const CublasApi& blas;
    cublasHandle_t handle;
    const inf_plugin_model_step& p;
    int ordinal;
    ErrorSink sink;

    // y[rows][out] = x[rows][in] * w^T + beta * y; w is [out][in] row-major, x and w in the weight dtype,
    // y float32, float32 accumulation. Column-major view: y^T (out x rows) = W^T' * x^T with W^T' the
    // [in][out] column-major matrix w, hence op(A) = T.
    inf_status gemm(const void* x, std::int32_t rows, std::int32_t in, const void* w, std::int32_t out, float* y,
                    float beta, const char* what, std::int32_t layer) const {
        const float alpha = 1.0f;
        const cudaDataType_t type = p.weight_dtype == INF_DTYPE_BF16 ? CUDA_R_16BF : CUDA_R_32F;
        const cublasStatus_t status =
            blas.gemm_ex(handle, CUBLAS_OP_T, CUBLAS_OP_N, out, rows, in, &alpha, w, type, in, x, type, in, &beta, y,
                         CUDA_R_32F, out, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
        if (status == CUBLAS_STATUS_SUCCESS) {
            return INF_STATUS_OK;
        }
        if (layer >= 0) {
            return report_status(sink, status_of_cublas(status),
                                 "cublasGemmEx(%s, layer %d, %d x %d x %d) on cuda:%d: %s", what, layer, rows, out, in,
                                 ordinal, cublas_status_name(status));
        }
        return report_status(sink, status_of_cublas(status), "cublasGemmEx(%s, %d x %d x %d) on cuda:%d: %s", what,
                             rows, out, in, ordinal, cublas_status_name(status));
    }

    // A kernel launcher's result: an argument error (cudaErrorInvalidValue with a reason) is INVALID_ARGUMENT.
    inf_status launched(cudaError_t status, const char* what, std::int32_t layer, const char* why = nullptr) const {
        if (status == cudaSuccess) {
            return INF_STATUS_OK;
        }
        if (status == cudaErrorInvalidValue && why != nullptr) {
            cudaGetLastError();  // an argument error must not stick to the next call
            return report_status(sink, INF_STATUS_INVALID_ARGUMENT, "%s (layer %d) on cuda:%d: %s", what, layer,
                                 ordinal, why);
        }
        if (layer >= 0) {
            return report(sink, status, "%s kernel (layer %d) on cuda:%d", what, layer, ordinal);
        }
        return report(sink, status, "%s kernel on cuda:%d", what, ordinal);
    }
};

#define INF_STEP_TRY(expression)                      \
    do {                                              \
        const inf_status step_status_ = (expression); \
        if (step_status_ != INF_STATUS_OK) {          \
            return step_status_;                      \
        }                                             \
    } while (0)

inf_status run_layers(const Step& s, const Layout& l, int sm_count, int max_shared, PrefillMode mode) {
    const inf_plugin_model_step& p = s.p;
    auto* base = static_cast<unsigned char*>(p.workspace);
    auto* x = reinterpret_cast<float*>(base + l.x);
    void* xn = base + l.xn;
    auto* qkv = reinterpret_cast<float*>(base + l.qkv);
    auto* q = reinterpret_cast<float*>(base + l.q);
    auto* k = reinterpret_cast<float*>(base + l.k);
    auto* v = reinterpret_cast<float*>(base + l.v);
    auto* o = reinterpret_cast<float*>(base + l.o);
    auto* lse = reinterpret_cast<float*>(base + l.lse);
    const bool bf16 = p.weight_dtype == INF_DTYPE_BF16;
    void* o_in = bf16 ? static_cast<void*>(base + l.o_in) : static_cast<void*>(o);
    auto* gate_up = reinterpret_cast<float*>(base + l.gate_up);
    void* act = base + l.act;
    const std::int32_t tokens = p.tokens;
    const std::int32_t qw = p.q_heads * p.head_dim;
    const std::int32_t kw = p.kv_heads * p.head_dim;

    INF_STEP_TRY(
        s.launched(launch_embed(p.token_embedding, p.weight_dtype, p.token_ids, tokens, p.dim, x), "embedding", -1));
    for (std::int32_t layer = 0; layer < p.layers; ++layer) {
        const inf_plugin_model_layer& w = p.layer[layer];
        INF_STEP_TRY(s.launched(launch_rms_norm(x, nullptr, tokens, p.dim, w.attn_norm, p.norm_eps, xn, p.weight_dtype),
                                "attn_norm", layer));
        INF_STEP_TRY(s.gemm(xn, tokens, p.dim, w.wqkv, qw + 2 * kw, qkv, 0.0f, "qkv_proj", layer));
        INF_STEP_TRY(s.launched(launch_split_rope(qkv, p.positions, p.rope_inv_freq, tokens, p.q_heads, p.kv_heads,
                                                  p.head_dim, static_cast<inf_rope_style>(p.rope_style), q, k, v),
                                "rope", layer));

        inf_kv_append_params append{};
        append.layer = w.kv;
        append.tokens = tokens;
        append.pages = p.token_pages;
        append.slots = p.token_slots;
        append.k = k;
        append.v = v;
        const char* why = nullptr;
        INF_STEP_TRY(s.launched(launch_kv_append(append, &why), "kv_append", layer, why));

        inf_attention_params attention = attention_shape(p, layer);
        attention.q = q;
        attention.o = o;
        attention.lse = lse;
        attention.q_starts = p.q_starts;
        attention.q_positions = p.positions;
        attention.kv_lengths = p.kv_lengths;
        attention.page_starts = p.page_starts;
        attention.page_ids = p.page_ids;
        attention.page_positions = p.page_positions;
        attention.workspace = l.attention_bytes > 0 ? base + l.attention : nullptr;
        attention.workspace_bytes = l.attention_bytes;
        why = nullptr;
        INF_STEP_TRY(
            s.launched(launch_attention(attention, sm_count, max_shared, mode, &why), "attention", layer, why));

        if (bf16) {
            INF_STEP_TRY(
                s.launched(launch_to_bf16(o, static_cast<std::int64_t>(tokens) * qw, o_in), "o to bf16", layer));
        }
        INF_STEP_TRY(s.gemm(o_in, tokens, qw, w.wo, p.dim, x, 1.0f, "o_proj", layer));  // beta 1: the residual add
        INF_STEP_TRY(s.launched(launch_rms_norm(x, nullptr, tokens, p.dim, w.ffn_norm, p.norm_eps, xn, p.weight_dtype),
                                "ffn_norm", layer));
        INF_STEP_TRY(s.gemm(xn, tokens, p.dim, w.w_gate_up, 2 * p.ffn_dim, gate_up, 0.0f, "gate_up_proj", layer));
        INF_STEP_TRY(s.launched(launch_silu_mul(gate_up, tokens, p.ffn_dim, act, p.weight_dtype), "silu_mul", layer));
        INF_STEP_TRY(s.gemm(act, tokens, p.ffn_dim, w.w_down, p.dim, x, 1.0f, "down_proj", layer));
    }
    if (p.logit_rows == 0) {
        return INF_STATUS_OK;
    }
    void* head = base + l.head;
    auto* logits = reinterpret_cast<float*>(base + l.logits);
    INF_STEP_TRY(s.launched(
        launch_rms_norm(x, p.logit_tokens, p.logit_rows, p.dim, p.output_norm, p.norm_eps, head, p.weight_dtype),
        "output_norm", -1));
    INF_STEP_TRY(s.gemm(head, p.logit_rows, p.dim, p.lm_head, p.vocab_size, logits, 0.0f, "lm_head", -1));
    // On the legacy default stream, after every kernel above: returns when the logits are on the host, and
    // reports any failure of the queued work.
    const std::uint64_t bytes = static_cast<std::uint64_t>(p.logit_rows) * static_cast<std::uint64_t>(p.vocab_size) * 4;
    const cudaError_t status = cudaMemcpy(p.logits, logits, bytes, cudaMemcpyDeviceToHost);
    if (status != cudaSuccess) {
        return report(s.sink, status, "model step: copying the logits (%llu bytes) to the host on cuda:%d",
                      static_cast<unsigned long long>(bytes), s.ordinal);
    }
    return INF_STATUS_OK;
}

}  // namespace

std::uint64_t model_step_workspace_bytes(const inf_plugin_model_step& p, int sm_count) noexcept {
    return layout_of(p, sm_count).total;
}

inf_status run_model_step(int ordinal, const inf_plugin_model_step& p, int sm_count, int max_shared, PrefillMode mode,
                          ErrorSink sink) noexcept {
    if (ordinal < 0 || ordinal >= kMaxDevices) {
        return report_status(sink, INF_STATUS_UNSUPPORTED, "model step on cuda:%d: at most %d devices", ordinal,
                             kMaxDevices);
    }
    if (p.size < sizeof(inf_plugin_model_step)) {
        return report_status(sink, INF_STATUS_INVALID_ARGUMENT,
                             "model step on cuda:%d: the core's step description has %u bytes, this plug-in needs %u",
                             ordinal, static_cast<unsigned>(p.size),
                             static_cast<unsigned>(sizeof(inf_plugin_model_step)));
    }
    if (p.weight_dtype != INF_DTYPE_F32 && p.weight_dtype != INF_DTYPE_BF16) {
        return report_status(sink, INF_STATUS_INVALID_ARGUMENT,
                             "model step on cuda:%d: weight dtype %d is not F32 or BF16", ordinal,
                             static_cast<int>(p.weight_dtype));
    }
    const Layout layout = layout_of(p, sm_count);
    if (p.workspace_bytes < layout.total || (layout.total > 0 && p.workspace == nullptr)) {
        return report_status(sink, INF_STATUS_INVALID_ARGUMENT,
                             "model step on cuda:%d: the workspace has %llu bytes but the step needs %llu", ordinal,
                             static_cast<unsigned long long>(p.workspace_bytes),
                             static_cast<unsigned long long>(layout.total));
    }
    if (p.tokens <= 0) {
        return INF_STATUS_OK;
    }
    const char* why = nullptr;
    const CublasApi* blas = cublas_api(&why);
    if (blas == nullptr) {
        return report_status(sink, INF_STATUS_BACKEND_UNAVAILABLE, "model step on cuda:%d: %s", ordinal, why);
    }
    DeviceBlas& device = g_blas[ordinal];
    std::lock_guard<std::mutex> lock(device.mutex);
    if (device.handle == nullptr) {
        cublasHandle_t handle = nullptr;
        cublasStatus_t status = blas->create(&handle);
        if (status != CUBLAS_STATUS_SUCCESS) {
            return report_status(sink, status_of_cublas(status), "cublasCreate on cuda:%d: %s", ordinal,
                                 cublas_status_name(status));
        }
        // The legacy default stream, named explicitly (a null stream could mean the per-thread one in a library
        // built that way): every other kernel and copy of the plug-in runs on it, so the GEMMs are ordered
        // with them and with the final copy of the logits.
        status = blas->set_stream(handle, cudaStreamLegacy);
        if (status != CUBLAS_STATUS_SUCCESS) {
            blas->destroy(handle);
            return report_status(sink, status_of_cublas(status), "cublasSetStream on cuda:%d: %s", ordinal,
                                 cublas_status_name(status));
        }
        device.handle = handle;
    }
    const Step step{*blas, device.handle, p, ordinal, sink};
    return run_layers(step, layout, sm_count, max_shared, mode);
}

}  // namespace inf::cuda
