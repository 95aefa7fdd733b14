// A tiny random Llama-family model for the model tests: weights drawn at random (normal, scaled
// 1/sqrt(in)), encoded as F32 / F16 / BF16 / Q8_0 tensors, and a float64 reference forward pass over the
// decoded values (plain loops, its own dense causal attention, optional Λ mask for streaming heads).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "infinite/infinite.h"
#include "test_util.h"

namespace model_test {

inf_model_config tiny_config(inf_rope_style style = INF_ROPE_STYLE_INTERLEAVED,
                             inf_rope_scaling scaling = INF_ROPE_SCALING_NONE);

// The weights as the model file holds them (encoded bytes) and as the reference reads them (decoded).
class RandomWeights {
public:
    RandomWeights(const inf_model_config& config, inf_tensor_type type, std::uint32_t seed);
    const std::vector<inf_tensor>& tensors() const { return tensors_; }
    // Decoded values of a tensor by name.
    const std::vector<double>& values(const std::string& name) const { return values_.at(name); }
    // The tensor list with one entry changed (for validation tests); index by name.
    std::vector<inf_tensor> tensors_with(const std::string& name, const inf_tensor& replacement) const;
    std::size_t index_of(const std::string& name) const;

private:
    std::vector<inf_tensor> tensors_;
    std::vector<std::unique_ptr<std::string>> names_;
    std::vector<std::vector<unsigned char>> bytes_;
    std::map<std::string, std::vector<double>> values_;
};

// Λ mask of the reference: streaming[layer * kv_heads + h] != 0 sees keys < sink or > p - local.
struct ReferenceMask {
    std::vector<std::int32_t> streaming;
    std::int32_t sink = 0;
    std::int32_t local = 0;
    // Optional, per (layer, KV head): the page entries (of page_size keys) the last token's dense heads
    // read (a page selection); empty: all.
    std::vector<std::vector<std::int32_t>> last_pages;
    std::int32_t page_size = 0;
};

// Logits [tokens.size()][vocab] of every position of one sequence, in float64.
std::vector<double> reference_logits(const inf_model_config& config, const RandomWeights& weights,
                                     const std::vector<std::int32_t>& tokens, const ReferenceMask* mask = nullptr);

// max |a - b| / max |b|.
double relative_error(const std::vector<float>& actual, const std::vector<double>& expected);
double relative_error(const std::vector<float>& actual, const std::vector<float>& expected);

struct ModelDeleter {
    void operator()(inf_model* model) const { EXPECT_OK(inf_model_destroy(model)); }
};
using Model = std::unique_ptr<inf_model, ModelDeleter>;
Model make_model(inf_device* device, const inf_model_config& config, const RandomWeights& weights);

// One sequence of a step: its tokens this step and where its KV lives.
struct SequenceStep {
    std::vector<std::int32_t> tokens;
    std::int32_t first_position = 0;
    std::vector<std::int32_t> pages;  // its page table (covering first_position + tokens)
};

// Runs one step with logits for every token (rows in step order); sparse may be null. Returns the
// status; logits are NaN-poisoned first.
inf_status run_step(inf_model* model, inf_page_pool* pool, const std::vector<SequenceStep>& sequences,
                    const inf_sparse_step* sparse, std::vector<float>& logits, std::int32_t vocab);

// Feeds tokens to one sequence in chunks of chunk (the last one shorter), returning all logits.
std::vector<float> run_chunked(inf_model* model, inf_page_pool* pool, const std::vector<std::int32_t>& tokens,
                               std::int32_t chunk, const std::vector<std::int32_t>& pages, std::int32_t page_size,
                               std::int32_t vocab, const inf_sparse_step* sparse = nullptr);

std::vector<std::int32_t> random_tokens(std::size_t count, std::int32_t vocab, std::uint32_t seed);

}  // namespace model_test
