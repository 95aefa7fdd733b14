#include "model/cuda_llama_model.h"

#include <algorithm>
#include <limits>

#include "core/status.h"
#include "kv/dtype.h"
#include "model/model_config.h"
#include "model/model_weights.h"
#include "model/rope.h"
#include "model/tensor_convert.h"

namespace inf {

namespace {

// Elements converted and copied at a time: bounds the host memory of a conversion and lets progress move
// within big tensors. A multiple of the Q8_0 block (32), so pieces start at block boundaries.
constexpr std::uint64_t kPieceElements = std::uint64_t{1} << 22;

// Int arrays of the packed plan start at multiples of this many ints (256 bytes), like device allocations.
constexpr std::size_t kIntAlign = 64;

std::size_t align_ints(std::size_t n) { return (n + kIntAlign - 1) / kIntAlign * kIntAlign; }

// Converts tensors to the device's storage piece by piece and uploads them, reporting progress in source
// bytes (as ModelWeights does on the CPU).
class Uploader {
public:
    Uploader(const Device& device, std::uint64_t total, inf_progress_callback progress, void* user_data)
        : device_(device), total_(total), progress_(progress), user_data_(user_data) {}

    // Writes t's values as target (F32 or BF16) at element offset of dst.
    void put(const MatchedTensor& t, void* dst, std::uint64_t offset, inf_dtype target) {
        const auto type = static_cast<inf_tensor_type>(raw_enum(t.tensor.type));
        const std::uint64_t out_bytes = element_size(target);
        const std::uint64_t piece_bytes = tensor_type_bytes(type, kPieceElements);
        const bool same = (type == INF_TENSOR_TYPE_F32 && target == INF_DTYPE_F32) ||
                          (type == INF_TENSOR_TYPE_BF16 && target == INF_DTYPE_BF16);
        Backend& backend = device_.backend();
        for (std::uint64_t first = 0; first < t.elements; first += kPieceElements) {
            const std::uint64_t count = std::min(kPieceElements, t.elements - first);
            const auto* src = static_cast<const unsigned char*>(t.tensor.data) + first / kPieceElements * piece_bytes;
            void* to = static_cast<unsigned char*>(dst) + (offset + first) * out_bytes;
            if (same) {
                backend.copy_from_host(device_.ordinal(), to, src, count * out_bytes);
            } else {
                f32_.resize(static_cast<std::size_t>(count));
                tensor_to_f32(type, src, f32_.data(), count);
                if (target == INF_DTYPE_F32) {
                    backend.copy_from_host(device_.ordinal(), to, f32_.data(), count * 4);
                } else {
                    bf16_.resize(static_cast<std::size_t>(count));
                    std::transform(f32_.begin(), f32_.end(), bf16_.begin(), f32_to_bf16);
                    backend.copy_from_host(device_.ordinal(), to, bf16_.data(), count * 2);
                }
            }
            done_ += tensor_type_bytes(type, count);
            report();
        }
    }

    void finish() {
        if (done_ != total_ || total_ == 0) {
            done_ = total_;
            report();
        }
    }

private:
    void report() const {
        if (progress_ != nullptr) {
            progress_(user_data_, done_, total_);
        }
    }

    const Device& device_;
    std::uint64_t total_;
    std::uint64_t done_ = 0;
    inf_progress_callback progress_;
    void* user_data_;
    std::vector<float> f32_;
    std::vector<std::uint16_t> bf16_;
};

}  // namespace

CudaLlamaModel::CudaLlamaModel(std::shared_ptr<Device> device, const inf_model_config& config,
                               const inf_tensor* tensors, std::int32_t tensor_count, inf_progress_callback progress,
                               void* user_data)
    : device_(std::move(device)), config_(config) {
    const inf_model_config& c = config_;
    if (c.head_dim % 8 != 0 || c.head_dim > 256) {
        fail(INF_STATUS_UNSUPPORTED, "config->head_dim (", c.head_dim, ") is not supported on ", device_->label(),
             ": the CUDA attention kernels need a multiple of 8 up to 256");
    }
    const std::vector<MatchedTensor> matched = match_tensors(c, tensors, tensor_count);
    device_->backend().require_model_step(device_->ordinal());

    std::uint64_t total = 0;
    bool all_f32 = true;
    for (const MatchedTensor& t : matched) {
        total += t.tensor.bytes;
        all_f32 = all_f32 && raw_enum(t.tensor.type) == INF_TENSOR_TYPE_F32;
    }
    dtype_ = all_f32 ? INF_DTYPE_F32 : INF_DTYPE_BF16;
    const std::uint64_t e = element_size(dtype_);
    const auto dim = static_cast<std::uint64_t>(c.dim);
    const auto qw = static_cast<std::uint64_t>(q_width(c));
    const auto kw = static_cast<std::uint64_t>(kv_width(c));
    const auto ffn = static_cast<std::uint64_t>(c.ffn_dim);
    const auto vocab = static_cast<std::uint64_t>(c.vocab_size);
    const auto allocate = [this](std::uint64_t bytes) {
        bytes_ += bytes;
        return DeviceMemory(*device_, bytes);
    };

    Uploader upload(*device_, total, progress, user_data);
    // match_tensors' order: token_embd, output_norm, output (unless tied), then 9 tensors per layer.
    std::size_t next = 0;
    embedding_ = allocate(vocab * dim * e);
    upload.put(matched[next++], embedding_.data(), 0, dtype_);
    output_norm_ = allocate(dim * 4);
    upload.put(matched[next++], output_norm_.data(), 0, INF_DTYPE_F32);
    if (c.tied_embeddings == 0) {
        lm_head_ = allocate(vocab * dim * e);
        upload.put(matched[next++], lm_head_.data(), 0, dtype_);
    }
    layers_.resize(static_cast<std::size_t>(c.layers));
    for (Layer& layer : layers_) {
        layer.attn_norm = allocate(dim * 4);
        upload.put(matched[next++], layer.attn_norm.data(), 0, INF_DTYPE_F32);
        layer.wqkv = allocate((qw + 2 * kw) * dim * e);
        upload.put(matched[next++], layer.wqkv.data(), 0, dtype_);                // q rows
        upload.put(matched[next++], layer.wqkv.data(), qw * dim, dtype_);         // k rows
        upload.put(matched[next++], layer.wqkv.data(), (qw + kw) * dim, dtype_);  // v rows
        layer.wo = allocate(dim * qw * e);
        upload.put(matched[next++], layer.wo.data(), 0, dtype_);
        layer.ffn_norm = allocate(dim * 4);
        upload.put(matched[next++], layer.ffn_norm.data(), 0, INF_DTYPE_F32);
        layer.gate_up = allocate(2 * ffn * dim * e);
        upload.put(matched[next++], layer.gate_up.data(), 0, dtype_);          // gate rows
        upload.put(matched[next++], layer.gate_up.data(), ffn * dim, dtype_);  // up rows
        layer.down = allocate(dim * ffn * e);
        upload.put(matched[next++], layer.down.data(), 0, dtype_);
    }
    const std::vector<double> inv_freq = rope_inv_freq(c);
    inv_freq_ = allocate(inv_freq.size() * sizeof(double));
    device_->backend().copy_from_host(device_->ordinal(), inv_freq_.data(), inv_freq.data(),
                                      inv_freq.size() * sizeof(double));
    upload.finish();
}

void CudaLlamaModel::step(PagePool& pool, const inf_step_plan& plan, const StepShape& shape, float* logits) const {
    if (shape.sparse || shape.exchange) {  // refused by model_api.cpp before the checks; kept for other callers
        fail(INF_STATUS_UNSUPPORTED, shape.sparse ? "plan->sparse" : "plan->exchange", " is not supported on ",
             device_->label());
    }
    const inf_page_pool_config& pc = pool.config();
    if (pc.dtype == INF_DTYPE_I8) {
        fail(INF_STATUS_UNSUPPORTED, "a pool of dtype INF_DTYPE_I8 is not supported by the model step on ",
             device_->label());
    }
    if (plan.tokens == 0) {
        return;
    }
    std::lock_guard lock(step_mutex_);
    const inf_model_config& c = config_;
    const std::int32_t sequences = plan.sequences;
    const std::int32_t tokens = plan.tokens;
    const std::int32_t entries = plan.page_starts[sequences];
    const std::int32_t rows = plan.logit_rows;
    const std::int32_t page_size = pc.page_size;

    // The plan's arrays (and the token pages / slots and default page positions made here) packed into one
    // host block, copied to the device at once.
    enum Segment {
        kTokenIds,
        kPositions,
        kQStarts,
        kKvLengths,
        kPageStarts,
        kPageIds,
        kPagePositions,
        kPages,
        kSlots,
        kLogitTokens,
        kSegments
    };
    const std::size_t sizes[kSegments] = {static_cast<std::size_t>(tokens),        static_cast<std::size_t>(tokens),
                                          static_cast<std::size_t>(sequences) + 1, static_cast<std::size_t>(sequences),
                                          static_cast<std::size_t>(sequences) + 1, static_cast<std::size_t>(entries),
                                          static_cast<std::size_t>(entries),       static_cast<std::size_t>(tokens),
                                          static_cast<std::size_t>(tokens),        static_cast<std::size_t>(rows)};
    std::size_t offsets[kSegments + 1] = {};
    for (int i = 0; i < kSegments; ++i) {
        offsets[i + 1] = offsets[i] + align_ints(sizes[i]);
    }
    host_ints_.resize(offsets[kSegments]);
    std::int32_t* ints = host_ints_.data();
    // A plain loop: GCC 12 misreads std::copy_n's bound here (-Wstringop-overflow on a size it cannot bound).
    const auto put = [&](Segment segment, const std::int32_t* values) {
        std::int32_t* out = ints + offsets[segment];
        for (std::size_t i = 0; i < sizes[segment]; ++i) {
            out[i] = values[i];
        }
    };
    put(kTokenIds, plan.token_ids);
    put(kPositions, plan.positions);
    put(kQStarts, plan.q_starts);
    put(kKvLengths, plan.kv_lengths);
    put(kPageStarts, plan.page_starts);
    put(kPageIds, plan.page_ids);
    if (rows > 0) {
        put(kLogitTokens, plan.logit_tokens);
    }
    std::int32_t* page_positions = ints + offsets[kPagePositions];
    std::int32_t* pages = ints + offsets[kPages];
    std::int32_t* slots = ints + offsets[kSlots];
    std::int32_t max_q = 0;
    std::int32_t max_entries = 0;
    for (std::int32_t s = 0; s < sequences; ++s) {
        const std::int32_t begin = plan.page_starts[s];
        const std::int32_t end = plan.page_starts[s + 1];
        for (std::int32_t j = begin; j < end; ++j) {
            page_positions[j] = plan.page_positions != nullptr ? plan.page_positions[j] : (j - begin) * page_size;
        }
        // The entry that covers each token (check_step made sure one does: no exchange here).
        std::int32_t j = begin;
        for (std::int32_t t = plan.q_starts[s]; t < plan.q_starts[s + 1]; ++t) {
            const std::int64_t p = plan.positions[t];
            while (j < end && std::int64_t{page_positions[j]} + page_size <= p) {
                ++j;
            }
            if (j == end || page_positions[j] > p) {
                fail(INF_STATUS_INTERNAL, "plan: no entry of sequence ", s, " covers position ", p, " (token ", t,
                     ") after the step checks");
            }
            pages[t] = plan.page_ids[j];
            slots[t] = static_cast<std::int32_t>(p % page_size);
        }
        max_q = std::max(max_q, plan.q_starts[s + 1] - plan.q_starts[s]);
        max_entries = std::max(max_entries, end - begin);
    }
    Backend& backend = device_->backend();
    const std::int32_t ordinal = device_->ordinal();
    const std::uint64_t int_bytes = host_ints_.size() * sizeof(std::int32_t);
    ints_.reserve(*device_, int_bytes);
    backend.copy_from_host(ordinal, ints_.data(), host_ints_.data(), int_bytes);
    const auto* device_ints = static_cast<const std::int32_t*>(ints_.data());
    const auto at = [&](Segment segment) { return device_ints + offsets[segment]; };

    host_layers_.resize(layers_.size());
    for (std::size_t l = 0; l < layers_.size(); ++l) {
        const Layer& w = layers_[l];
        inf_plugin_model_layer& out = host_layers_[l];
        out.attn_norm = static_cast<const float*>(w.attn_norm.data());
        out.wqkv = w.wqkv.data();
        out.wo = w.wo.data();
        out.ffn_norm = static_cast<const float*>(w.ffn_norm.data());
        out.w_gate_up = w.gate_up.data();
        out.w_down = w.down.data();
        out.kv = pool.kv_layer(static_cast<std::int32_t>(l));
    }
    inf_plugin_model_step p{};
    p.size = sizeof p;
    p.vocab_size = c.vocab_size;
    p.dim = c.dim;
    p.layers = c.layers;
    p.q_heads = c.q_heads;
    p.kv_heads = c.kv_heads;
    p.head_dim = c.head_dim;
    p.ffn_dim = c.ffn_dim;
    p.norm_eps = c.norm_eps;
    p.rope_style = raw_enum(c.rope_style);
    p.weight_dtype = dtype_;
    p.token_embedding = embedding_.data();
    p.output_norm = static_cast<const float*>(output_norm_.data());
    p.lm_head = c.tied_embeddings != 0 ? embedding_.data() : lm_head_.data();
    p.rope_inv_freq = static_cast<const double*>(inv_freq_.data());
    p.layer = host_layers_.data();
    p.sequences = sequences;
    p.tokens = tokens;
    p.logit_rows = rows;
    p.max_q = max_q;
    p.max_entries = max_entries;
    p.token_ids = at(kTokenIds);
    p.positions = at(kPositions);
    p.q_starts = at(kQStarts);
    p.kv_lengths = at(kKvLengths);
    p.page_starts = at(kPageStarts);
    p.page_ids = at(kPageIds);
    p.page_positions = at(kPagePositions);
    p.token_pages = at(kPages);
    p.token_slots = at(kSlots);
    p.logit_tokens = rows > 0 ? at(kLogitTokens) : nullptr;
    p.logits = logits;
    workspace_.reserve(*device_, backend.model_step_workspace_bytes(ordinal, p));
    p.workspace = workspace_.data();
    p.workspace_bytes = workspace_.size();
    backend.model_step(ordinal, p);
}

}  // namespace inf
