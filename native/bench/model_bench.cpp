// The CPU forward step of a 12M-parameter Llama-shaped model through the C ABI (inf_model_step):
// dim 512, 4 layers, 8 q / 2 KV heads x 64, ffn 1536, vocab 512, random F32 weights; bf16 KV pool with
// pages of 64 (summaries on logical pages of 16). The context's K/V is written straight into the pool
// (random values), so decode rows need no prefill first.
//   model/decode/dense/ctx:N    ms per decoded token at batch 1 (ctx:64 is the non-attention floor).
//   model/decode/*/kv:i8/ctx:N  the same over an int8 KV pool (per-row scales): half the KV bytes of bf16.
//   model/decode/sparse/ctx:N   LServe: KV head 1 of each layer streaming (sink 128 + local 256), retrieval
//                               heads select pages under a 4096-token budget, reselecting every 4th step.
//   model/prefill/ctx:N         a prompt of N tokens in chunks of 2048 (one iteration): tokens/s.
// Targets (2 threads): decode <= 5 ms/token at 32K dense, <= 3 ms sparse; prefill 32K >= 800 tokens/s.
// Run: build/native/bin/infinite_bench --benchmark_filter=model/
#include <benchmark/benchmark.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "infinite/infinite.h"

namespace {

constexpr int kDim = 512;
constexpr int kLayers = 4;
constexpr int kQHeads = 8;
constexpr int kKvHeads = 2;
constexpr int kHeadDim = 64;
constexpr int kFfn = 1536;
constexpr int kVocab = 512;
constexpr int kPage = 64;
constexpr int kChunk = 2048;

bool ok(inf_status status, benchmark::State& state, const char* what) {
    if (status != INF_STATUS_OK) {
        state.SkipWithError((std::string(what) + ": " + inf_last_error()).c_str());
        return false;
    }
    return true;
}

inf_model_config model_config() {
    inf_model_config c{};
    c.size = sizeof c;
    c.vocab_size = kVocab;
    c.dim = kDim;
    c.layers = kLayers;
    c.q_heads = kQHeads;
    c.kv_heads = kKvHeads;
    c.head_dim = kHeadDim;
    c.ffn_dim = kFfn;
    c.norm_eps = 1e-5F;
    c.rope_theta = 500000.0F;
    c.rope_style = INF_ROPE_STYLE_HALF;
    c.rope_scaling = INF_ROPE_SCALING_NONE;
    return c;
}

// The weights, kept alive for the model's life (F32 is used in place), and the model over them.
struct BenchModel {
    std::vector<std::vector<float>> data;
    std::vector<std::string> names;
    inf_device* device = nullptr;
    inf_model* model = nullptr;

    BenchModel() {
        // INFINITE_MODEL_PROFILE=1: the model logs its per-phase step times (INFO) when destroyed.
        if (const char* profile = std::getenv("INFINITE_MODEL_PROFILE"); profile != nullptr && profile[0] == '1') {
            inf_set_log_level(INF_LOG_LEVEL_INFO);
        }
        const inf_model_config c = model_config();
        std::vector<std::pair<std::string, std::vector<std::int64_t>>> specs{
            {"token_embd.weight", {kVocab, kDim}}, {"output_norm.weight", {kDim}}, {"output.weight", {kVocab, kDim}}};
        for (int l = 0; l < kLayers; ++l) {
            const std::string b = "blk." + std::to_string(l) + ".";
            specs.push_back({b + "attn_norm.weight", {kDim}});
            specs.push_back({b + "attn_q.weight", {kQHeads * kHeadDim, kDim}});
            specs.push_back({b + "attn_k.weight", {kKvHeads * kHeadDim, kDim}});
            specs.push_back({b + "attn_v.weight", {kKvHeads * kHeadDim, kDim}});
            specs.push_back({b + "attn_output.weight", {kDim, kQHeads * kHeadDim}});
            specs.push_back({b + "ffn_norm.weight", {kDim}});
            specs.push_back({b + "ffn_gate.weight", {kFfn, kDim}});
            specs.push_back({b + "ffn_up.weight", {kFfn, kDim}});
            specs.push_back({b + "ffn_down.weight", {kDim, kFfn}});
        }
        std::mt19937 engine(1);
        std::normal_distribution<float> normal(0.0F, 1.0F);
        std::vector<inf_tensor> tensors;
        names.reserve(specs.size());
        data.reserve(specs.size());
        for (const auto& [name, shape] : specs) {
            std::int64_t count = 1;
            for (auto e : shape) count *= e;
            std::vector<float> values(static_cast<std::size_t>(count));
            const float scale = shape.size() == 1 ? 0.0F : 1.0F / std::sqrt(static_cast<float>(shape.back()));
            for (float& v : values) v = shape.size() == 1 ? 1.0F : normal(engine) * scale;
            data.push_back(std::move(values));
            names.push_back(name);
            inf_tensor t{};
            t.size = sizeof t;
            t.type = INF_TENSOR_TYPE_F32;
            t.name = names.back().c_str();
            t.dims = static_cast<std::int32_t>(shape.size());
            for (std::size_t i = 0; i < shape.size(); ++i) t.shape[i] = shape[i];
            t.data = data.back().data();
            t.bytes = data.back().size() * 4;
            tensors.push_back(t);
        }
        if (inf_device_create(INF_DEVICE_KIND_CPU, 0, &device) != INF_STATUS_OK ||
            inf_model_create(device, &c, tensors.data(), static_cast<std::int32_t>(tensors.size()), nullptr, nullptr,
                             &model) != INF_STATUS_OK) {
            model = nullptr;
        }
    }
    ~BenchModel() {
        inf_model_destroy(model);
        inf_device_destroy(device);
    }
    BenchModel(const BenchModel&) = delete;
    BenchModel& operator=(const BenchModel&) = delete;
};

// summary_bits: 32 (float32 key min/max), 16 or 8 (compact: the selector reads 2x / ~4x fewer bytes).
// dtype: the KV storage (bf16 unless a row says kv:i8).
inf_page_pool* make_pool(inf_device* device, int pages, int summary_bits = 32, inf_dtype dtype = INF_DTYPE_BF16) {
    inf_page_pool_config p{};
    p.size = sizeof p;
    p.dtype = dtype;
    p.layers = kLayers;
    p.kv_heads = kKvHeads;
    p.head_dim = kHeadDim;
    p.page_size = kPage;
    p.pages = pages;
    p.logical_page_size = 16;
    p.summary_bits = summary_bits;
    inf_page_pool* pool = nullptr;
    return inf_page_pool_create(device, &p, &pool) == INF_STATUS_OK ? pool : nullptr;
}

// Random K/V for positions [0, context) of every layer, written through inf_page_pool_append (page j of
// the table is pool page j).
bool fill_context(inf_page_pool* pool, int context) {
    constexpr int kBlock = 4096;
    std::mt19937 engine(7);
    std::normal_distribution<float> normal(0.0F, 1.0F);
    std::vector<float> k(static_cast<std::size_t>(kBlock) * kKvHeads * kHeadDim);
    std::vector<float> v(k.size());
    for (float& x : k) x = normal(engine);
    for (float& x : v) x = normal(engine);
    std::vector<std::int32_t> pages(kBlock), slots(kBlock);
    for (int layer = 0; layer < kLayers; ++layer) {
        for (int first = 0; first < context; first += kBlock) {
            const int count = std::min(kBlock, context - first);
            for (int i = 0; i < count; ++i) {
                pages[static_cast<std::size_t>(i)] = (first + i) / kPage;
                slots[static_cast<std::size_t>(i)] = (first + i) % kPage;
            }
            if (inf_page_pool_append(pool, layer, count, pages.data(), slots.data(), k.data(), v.data()) != INF_STATUS_OK) {
                return false;
            }
        }
    }
    return true;
}

void bench_decode(benchmark::State& state, int context, bool sparse, int summary_bits = 32,
                  inf_dtype dtype = INF_DTYPE_BF16) {
    BenchModel m;
    if (m.model == nullptr) {
        state.SkipWithError((std::string("model: ") + inf_last_error()).c_str());
        return;
    }
    const int entries = context / kPage + 1;
    inf_page_pool* pool = make_pool(m.device, entries, summary_bits, dtype);
    if (pool == nullptr || !fill_context(pool, context)) {
        state.SkipWithError((std::string("pool: ") + inf_last_error()).c_str());
        inf_page_pool_destroy(pool);
        return;
    }
    std::vector<std::int32_t> page_ids(static_cast<std::size_t>(entries));
    for (int j = 0; j < entries; ++j) page_ids[static_cast<std::size_t>(j)] = j;
    const std::int32_t token = 17;
    const std::int32_t position = context;  // every step rewrites the key at this position: the context stays N
    const std::int32_t q_starts[2] = {0, 1};
    const std::int32_t kv_length = context + 1;
    const std::int32_t page_starts[2] = {0, entries};
    const std::int32_t logit_token = 0;
    std::vector<std::int32_t> streaming(kLayers * kKvHeads, 0);
    for (int l = 0; l < kLayers; ++l) streaming[static_cast<std::size_t>(l * kKvHeads + 1)] = 1;
    const std::int64_t slot_ints = std::int64_t{kLayers} * kKvHeads * (1 + 4096 / kPage);
    std::vector<std::int32_t> store(static_cast<std::size_t>(slot_ints));
    const std::int32_t slot = 0;
    std::int32_t reselect = 1;
    inf_sparse_step sp{};
    sp.size = sizeof sp;
    sp.streaming_heads = streaming.data();
    sp.decode_sink_tokens = sp.prefill_sink_tokens = 128;
    sp.decode_local_tokens = sp.prefill_local_tokens = 256;
    sp.budget_tokens = 4096;
    sp.selection_store = store.data();
    sp.slot_ints = slot_ints;
    sp.selection_slots = &slot;
    sp.reselect = &reselect;
    inf_step_plan plan{};
    plan.size = sizeof plan;
    plan.sequences = 1;
    plan.tokens = 1;
    plan.logit_rows = 1;
    plan.token_ids = &token;
    plan.positions = &position;
    plan.q_starts = q_starts;
    plan.kv_lengths = &kv_length;
    plan.page_starts = page_starts;
    plan.page_ids = page_ids.data();
    plan.logit_tokens = &logit_token;
    plan.sparse = sparse ? &sp : nullptr;
    std::vector<float> logits(kVocab);
    std::int64_t steps = 0;
    const auto start = std::chrono::steady_clock::now();
    for (auto _ : state) {
        reselect = steps % 4 == 0 ? 1 : 0;  // LServe reuse: reselect every 4th step
        if (!ok(inf_model_step(m.model, pool, &plan, logits.data()), state, "inf_model_step")) break;
        ++steps;
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    state.counters["ms/token"] = steps > 0 ? seconds * 1e3 / static_cast<double>(steps) : 0.0;
    inf_page_pool_destroy(pool);
}

void bench_prefill(benchmark::State& state, int prompt) {
    BenchModel m;
    if (m.model == nullptr) {
        state.SkipWithError((std::string("model: ") + inf_last_error()).c_str());
        return;
    }
    const int entries = (prompt + kPage - 1) / kPage;
    inf_page_pool* pool = make_pool(m.device, entries);
    if (pool == nullptr) {
        state.SkipWithError((std::string("pool: ") + inf_last_error()).c_str());
        return;
    }
    std::vector<std::int32_t> page_ids(static_cast<std::size_t>(entries));
    for (int j = 0; j < entries; ++j) page_ids[static_cast<std::size_t>(j)] = j;
    std::vector<std::int32_t> tokens(kChunk), positions(kChunk);
    std::mt19937 engine(3);
    for (auto& t : tokens) t = static_cast<std::int32_t>(engine() % kVocab);
    std::vector<float> logits(kVocab);
    double seconds = 0.0;
    for (auto _ : state) {
        const auto start = std::chrono::steady_clock::now();
        for (int first = 0; first < prompt; first += kChunk) {
            const int count = std::min(kChunk, prompt - first);
            for (int i = 0; i < count; ++i) positions[static_cast<std::size_t>(i)] = first + i;
            const std::int32_t q_starts[2] = {0, count};
            const std::int32_t kv_length = first + count;
            const std::int32_t page_starts[2] = {0, (kv_length + kPage - 1) / kPage};
            const std::int32_t logit_token = count - 1;
            inf_step_plan plan{};
            plan.size = sizeof plan;
            plan.sequences = 1;
            plan.tokens = count;
            plan.logit_rows = 1;
            plan.token_ids = tokens.data();
            plan.positions = positions.data();
            plan.q_starts = q_starts;
            plan.kv_lengths = &kv_length;
            plan.page_starts = page_starts;
            plan.page_ids = page_ids.data();
            plan.logit_tokens = &logit_token;
            if (!ok(inf_model_step(m.model, pool, &plan, logits.data()), state, "inf_model_step")) break;
        }
        seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
    state.counters["tokens/s"] = static_cast<double>(prompt) * static_cast<double>(state.iterations()) / seconds;
    inf_page_pool_destroy(pool);
}

struct Registrar {
    Registrar() {

        for (const int context : {64, 4096, 32768, 131072}) {
            benchmark::RegisterBenchmark(("model/decode/dense/ctx:" + std::to_string(context)).c_str(),
                                         [context](benchmark::State& s) { bench_decode(s, context, false); })
                ->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(1.0);
            if (context >= 32768) {
                benchmark::RegisterBenchmark(("model/decode/dense/kv:i8/ctx:" + std::to_string(context)).c_str(),
                                             [context](benchmark::State& s) { bench_decode(s, context, false, 32, INF_DTYPE_I8); })
                    ->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(1.0);
            }
        }
        for (const int context : {32768, 131072}) {
            benchmark::RegisterBenchmark(("model/decode/sparse/ctx:" + std::to_string(context)).c_str(),
                                         [context](benchmark::State& s) { bench_decode(s, context, true); })
                ->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(1.0);
            if (context == 32768) {
                benchmark::RegisterBenchmark(("model/decode/sparse/kv:i8/ctx:" + std::to_string(context)).c_str(),
                                             [context](benchmark::State& s) { bench_decode(s, context, true, 32, INF_DTYPE_I8); })
                    ->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(1.0);
            }
            benchmark::RegisterBenchmark(("model/decode/sparse/summary:8/ctx:" + std::to_string(context)).c_str(),
                                         [context](benchmark::State& s) { bench_decode(s, context, true, 8); })
                ->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(1.0);
        }
        for (const int prompt : {4096, 32768}) {
            benchmark::RegisterBenchmark(("model/prefill/ctx:" + std::to_string(prompt)).c_str(),
                                         [prompt](benchmark::State& s) { bench_prefill(s, prompt); })
                ->UseRealTime()->Unit(benchmark::kMillisecond)->Iterations(1);
        }
    }
};

const Registrar registrar;

}  // namespace
