#include "model/model_weights.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <sstream>
#include <string>

#include "api/checks.h"
#include "core/status.h"
#include "model/model_config.h"
#include "model/tensor_convert.h"

namespace inf {

namespace {

// Conversion works in pieces of this many elements, so progress advances within big tensors.
constexpr std::uint64_t kProgressElements = std::uint64_t{1} << 22;

struct Expected {
    std::string name;
    std::vector<std::int64_t> shape;
    const float** slot;
};

std::string shape_text(const std::int64_t* shape, std::size_t dims) {
    std::ostringstream text;
    text << '[';
    for (std::size_t i = 0; i < dims; ++i) {
        text << (i == 0 ? "" : ", ") << shape[i];
    }
    text << ']';
    return text.str();
}

std::vector<Expected> expected_tensors(const inf_model_config& c, std::vector<LayerWeights>& layers,
                                       const float** embd, const float** norm, const float** head) {
    const std::int64_t dim = c.dim;
    std::vector<Expected> list;
    list.push_back({"token_embd.weight", {c.vocab_size, dim}, embd});
    list.push_back({"output_norm.weight", {dim}, norm});
    if (c.tied_embeddings == 0) {
        list.push_back({"output.weight", {c.vocab_size, dim}, head});
    }
    for (std::int32_t l = 0; l < c.layers; ++l) {
        LayerWeights& w = layers[static_cast<std::size_t>(l)];
        const std::string blk = "blk." + std::to_string(l) + ".";
        list.push_back({blk + "attn_norm.weight", {dim}, &w.attn_norm});
        list.push_back({blk + "attn_q.weight", {q_width(c), dim}, &w.wq});
        list.push_back({blk + "attn_k.weight", {kv_width(c), dim}, &w.wk});
        list.push_back({blk + "attn_v.weight", {kv_width(c), dim}, &w.wv});
        list.push_back({blk + "attn_output.weight", {dim, q_width(c)}, &w.wo});
        list.push_back({blk + "ffn_norm.weight", {dim}, &w.ffn_norm});
        list.push_back({blk + "ffn_gate.weight", {c.ffn_dim, dim}, &w.gate});
        list.push_back({blk + "ffn_up.weight", {c.ffn_dim, dim}, &w.up});
        list.push_back({blk + "ffn_down.weight", {dim, c.ffn_dim}, &w.down});
    }
    return list;
}

// Checks one tensor against its expected shape; returns its element count.
std::uint64_t check_tensor(const inf_tensor& t, std::int32_t index, const Expected& e) {
    const std::int32_t type = raw_enum(t.type);
    if (type < INF_TENSOR_TYPE_F32 || type > INF_TENSOR_TYPE_Q8_0) {
        fail(INF_STATUS_INVALID_ARGUMENT, e.name, " (tensors[", index, "]) has type ", type,
             ", which is not an inf_tensor_type (F32 = 0, F16 = 1, BF16 = 2, Q8_0 = 3)");
    }
    if (t.dims < 1 || t.dims > 4) {
        fail(INF_STATUS_INVALID_ARGUMENT, e.name, " (tensors[", index, "]) has dims ", t.dims, ", expected ",
             e.shape.size());
    }
    const auto dims = static_cast<std::size_t>(t.dims);
    if (dims != e.shape.size() || !std::equal(e.shape.begin(), e.shape.end(), t.shape)) {
        fail(INF_STATUS_INVALID_ARGUMENT, e.name, " has shape ", shape_text(t.shape, dims), ", expected ",
             shape_text(e.shape.data(), e.shape.size()));
    }
    std::uint64_t elements = 1;
    for (const std::int64_t extent : e.shape) {
        elements *= static_cast<std::uint64_t>(extent);  // config values are int32: no overflow
    }
    if (type == INF_TENSOR_TYPE_Q8_0 && e.shape.back() % kQ8Block != 0) {
        fail(INF_STATUS_INVALID_ARGUMENT, e.name, " is Q8_0 but its innermost dimension (", e.shape.back(),
             ") is not a multiple of the block size 32");
    }
    const std::uint64_t bytes = tensor_type_bytes(static_cast<inf_tensor_type>(type), elements);
    if (t.bytes != bytes) {
        fail(INF_STATUS_INVALID_ARGUMENT, e.name, " has ", t.bytes, " bytes, but shape ",
             shape_text(e.shape.data(), e.shape.size()), " of type ", tensor_type_name(type), " takes ", bytes);
    }
    if (t.data == nullptr) {
        fail(INF_STATUS_NULL_POINTER, e.name, " (tensors[", index, "]) has null data");
    }
    return elements;
}

}  // namespace

std::vector<MatchedTensor> match_tensors(const inf_model_config& config, const inf_tensor* tensors,
                                         std::int32_t tensor_count) {
    if (tensor_count < 0) {
        fail(INF_STATUS_INVALID_ARGUMENT, "tensor_count (", tensor_count, ") must be >= 0");
    }
    if (tensor_count > 0) {
        api::require_pointer(tensors, "tensors");
    }
    std::vector<LayerWeights> layers(static_cast<std::size_t>(config.layers));
    const float* unused[3] = {};
    std::vector<Expected> expected = expected_tensors(config, layers, &unused[0], &unused[1], &unused[2]);
    std::map<std::string, std::size_t> by_name;
    for (std::size_t i = 0; i < expected.size(); ++i) {
        by_name.emplace(expected[i].name, i);
    }

    // Match every given tensor to its role (names, versions, duplicates, extras) before any work.
    std::vector<inf_tensor> given(expected.size());
    std::vector<std::int32_t> index_of(expected.size(), -1);
    for (std::int32_t i = 0; i < tensor_count; ++i) {
        const std::string argument = "tensors[" + std::to_string(i) + "]";
        const inf_tensor t = api::read_versioned(&tensors[i], argument.c_str(), "inf_tensor");
        if (t.name == nullptr) {
            fail(INF_STATUS_NULL_POINTER, argument, ".name is null");
        }
        const auto found = by_name.find(t.name);
        if (found == by_name.end()) {
            fail(INF_STATUS_INVALID_ARGUMENT, argument, " (", t.name, ") is not a tensor of this model (",
                 config.layers, " layers", config.tied_embeddings != 0 ? ", tied embeddings: no output.weight" : "",
                 ")");
        }
        if (index_of[found->second] >= 0) {
            fail(INF_STATUS_INVALID_ARGUMENT, argument, " (", t.name, ") appears twice (also tensors[",
                 index_of[found->second], "])");
        }
        index_of[found->second] = i;
        given[found->second] = t;
    }
    std::vector<MatchedTensor> matched(expected.size());
    for (std::size_t e = 0; e < expected.size(); ++e) {
        if (index_of[e] < 0) {
            fail(INF_STATUS_INVALID_ARGUMENT, "tensor ", expected[e].name, " is missing from tensors");
        }
        matched[e].name = expected[e].name;
        matched[e].tensor = given[e];
        matched[e].elements = check_tensor(given[e], index_of[e], expected[e]);
    }
    return matched;
}

ModelWeights::ModelWeights(const inf_model_config& config, const inf_tensor* tensors, std::int32_t tensor_count,
                           inf_progress_callback progress, void* user_data)
    : layers_(static_cast<std::size_t>(config.layers)) {
    const std::vector<MatchedTensor> matched = match_tensors(config, tensors, tensor_count);
    std::vector<Expected> expected = expected_tensors(config, layers_, &token_embd_, &output_norm_, &lm_head_);
    std::vector<inf_tensor> given(expected.size());
    std::vector<std::uint64_t> elements(expected.size(), 0);
    for (std::size_t e = 0; e < expected.size(); ++e) {
        given[e] = matched[e].tensor;
        elements[e] = matched[e].elements;
    }

    std::uint64_t total = 0;
    for (const inf_tensor& t : given) {
        total += t.bytes;
    }
    std::uint64_t done = 0;
    const auto report = [&] {
        if (progress != nullptr) {
            progress(user_data, done, total);
        }
    };
    for (std::size_t e = 0; e < expected.size(); ++e) {
        const inf_tensor& t = given[e];
        const auto type = static_cast<inf_tensor_type>(raw_enum(t.type));
        const bool aligned = reinterpret_cast<std::uintptr_t>(t.data) % alignof(float) == 0;
        if (type == INF_TENSOR_TYPE_F32 && aligned) {
            *expected[e].slot = static_cast<const float*>(t.data);
            done += t.bytes;
            report();
            continue;
        }
        auto copy = std::make_unique<float[]>(elements[e]);
        const std::uint64_t bytes_per_piece = tensor_type_bytes(type, kProgressElements);
        for (std::uint64_t first = 0; first < elements[e]; first += kProgressElements) {
            const std::uint64_t count = std::min(kProgressElements, elements[e] - first);
            const auto* src = static_cast<const unsigned char*>(t.data) + first / kProgressElements * bytes_per_piece;
            tensor_to_f32(type, src, copy.get() + first, count);
            done += tensor_type_bytes(type, count);
            report();
        }
        owned_bytes_ += elements[e] * sizeof(float);
        *expected[e].slot = copy.get();
        owned_.push_back(std::move(copy));
    }
    if (config.tied_embeddings != 0) {
        lm_head_ = token_embd_;
    }
    if (progress != nullptr && (done != total || expected.empty())) {
        done = total;
        report();
    }
}

}  // namespace inf
