// The CUDA forward step of a Llama-3-8B-shaped model through the C ABI (inf_model_step on a CUDA device),
// registered only when the CUDA backend loads at run time.
//
//   model/decode/cuda/llama3-8b/ctx:32768/batch:1
//     dim 4096, 32 layers, 32 q / 8 KV heads x 128, ffn 14336, vocab 128256, random BF16 weights (16 GB on
//     the device); a bf16 pool with 64-token pages, no summaries, its 32768-token context written with random
//     K/V through inf_page_pool_append; one decode row (every step rewrites the key at position 32768, so the
//     context stays the same). Counters:
//       ms/token      wall time of one inf_model_step (logits back on the host included)
//       GB/token      bytes a decode must read once: every weight matrix (the LM head included, the embedding
//                     table only one row) + K and V of every visible key in every layer
//       floor_ms      GB/token / the device-to-device copy traffic (read + written) of CudaCopyBandwidth
//       pct_of_floor  floor_ms / ms/token * 100: how close the step gets to the memory-bandwidth bound
// The weights come from a few random host blocks, one per tensor shape, that every layer's tensors alias (no
// model file: 16 GB); each layer still gets its own device copy, so the reads are those of a real model.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "infinite/infinite.h"

double cuda_copy_traffic(inf_device* device);  // cuda_attention_bench.cpp

namespace {

constexpr int kDim = 4096;
constexpr int kLayers = 32;
constexpr int kQHeads = 32;
constexpr int kKvHeads = 8;
constexpr int kHeadDim = 128;
constexpr int kFfn = 14336;
constexpr int kVocab = 128256;
constexpr int kPage = 64;
constexpr int kContext = 32768;

bool ok(benchmark::State& state, inf_status status, const char* what) {
    if (status != INF_STATUS_OK) {
        state.SkipWithError((std::string(what) + ": " + inf_last_error()).c_str());
        return false;
    }
    return true;
}

std::uint64_t splitmix(std::uint64_t& x) {
    std::uint64_t z = (x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

// count bf16 values uniform in +-scale (never all zero), on a few threads.
std::vector<std::uint16_t> random_bf16(std::size_t count, float scale, std::uint64_t seed) {
    std::vector<std::uint16_t> out(count);
    const unsigned threads = std::max(1U, std::min(8U, std::thread::hardware_concurrency()));
    std::vector<std::thread> workers;
    for (unsigned w = 0; w < threads; ++w) {
        workers.emplace_back([&, w] {
            std::uint64_t state = seed * 1000003ULL + w;
            const std::size_t begin = count * w / threads;
            const std::size_t end = count * (w + 1) / threads;
            for (std::size_t i = begin; i < end; ++i) {
                const auto bits = static_cast<std::uint32_t>(splitmix(state) >> 40);  // 24 random bits
                const float u = static_cast<float>(bits) / 16777216.0F * 2.0F - 1.0F;
                const float value = u * scale;
                std::uint32_t f = 0;
                std::memcpy(&f, &value, 4);
                out[i] = static_cast<std::uint16_t>((f + 0x7FFFU + ((f >> 16) & 1U)) >> 16);
            }
        });
    }
    for (auto& worker : workers)
        worker.join();
    return out;
}

struct Tensors {
    std::vector<std::vector<std::uint16_t>> blocks;
    std::vector<std::string> names;
    std::vector<inf_tensor> list;

    Tensors() {
        const float in_dim = 1.0F / std::sqrt(static_cast<float>(kDim));
        const float in_ffn = 1.0F / std::sqrt(static_cast<float>(kFfn));
        blocks.push_back(random_bf16(std::size_t{kVocab} * kDim, in_dim, 1));               // 0 embedding / head
        blocks.push_back(random_bf16(std::size_t{kQHeads} * kHeadDim * kDim, in_dim, 2));   // 1 q, o
        blocks.push_back(random_bf16(std::size_t{kKvHeads} * kHeadDim * kDim, in_dim, 3));  // 2 k, v
        blocks.push_back(random_bf16(std::size_t{kFfn} * kDim, in_dim, 4));                 // 3 gate, up
        blocks.push_back(random_bf16(std::size_t{kDim} * kFfn, in_ffn, 5));                 // 4 down
        std::vector<std::uint16_t> norm(kDim);
        for (int i = 0; i < kDim; ++i)
            norm[static_cast<std::size_t>(i)] = 0x3F80U;  // 1.0
        blocks.push_back(norm);                           // 5 norms
        names.reserve(3 + 9 * kLayers);
        add("token_embd.weight", 0, {kVocab, kDim});
        add("output_norm.weight", 5, {kDim});
        add("output.weight", 0, {kVocab, kDim});
        for (int l = 0; l < kLayers; ++l) {
            const std::string b = "blk." + std::to_string(l) + ".";
            add(b + "attn_norm.weight", 5, {kDim});
            add(b + "attn_q.weight", 1, {kQHeads * kHeadDim, kDim});
            add(b + "attn_k.weight", 2, {kKvHeads * kHeadDim, kDim});
            add(b + "attn_v.weight", 2, {kKvHeads * kHeadDim, kDim});
            add(b + "attn_output.weight", 1, {kDim, kQHeads * kHeadDim});
            add(b + "ffn_norm.weight", 5, {kDim});
            add(b + "ffn_gate.weight", 3, {kFfn, kDim});
            add(b + "ffn_up.weight", 3, {kFfn, kDim});
            add(b + "ffn_down.weight", 4, {kDim, kFfn});
        }
    }

    void add(const std::string& name, std::size_t block, std::vector<std::int64_t> shape) {
        names.push_back(name);
        inf_tensor t{};
        t.size = sizeof t;
        t.type = INF_TENSOR_TYPE_BF16;
        t.name = names.back().c_str();
        t.dims = static_cast<std::int32_t>(shape.size());
        std::uint64_t elements = 1;
        for (std::size_t i = 0; i < shape.size(); ++i) {
            t.shape[i] = shape[i];
            elements *= static_cast<std::uint64_t>(shape[i]);
        }
        t.data = blocks[block].data();
        t.bytes = elements * 2;
        list.push_back(t);
    }
};

// Random K/V for positions [0, kContext) of every layer (page j of the table is pool page j).
bool fill_context(inf_page_pool* pool) {
    constexpr int kBlock = 4096;
    std::vector<float> k(static_cast<std::size_t>(kBlock) * kKvHeads * kHeadDim);
    std::vector<float> v(k.size());
    std::uint64_t state = 42;
    for (float& x : k)
        x = static_cast<float>(splitmix(state) >> 40) / 16777216.0F * 2.0F - 1.0F;
    for (float& x : v)
        x = static_cast<float>(splitmix(state) >> 40) / 16777216.0F * 2.0F - 1.0F;
    std::vector<std::int32_t> pages(kBlock), slots(kBlock);
    for (int layer = 0; layer < kLayers; ++layer) {
        for (int first = 0; first < kContext; first += kBlock) {
            const int count = std::min(kBlock, kContext - first);
            for (int i = 0; i < count; ++i) {
                pages[static_cast<std::size_t>(i)] = (first + i) / kPage;
                slots[static_cast<std::size_t>(i)] = (first + i) % kPage;
            }
            if (inf_page_pool_append(pool, layer, count, pages.data(), slots.data(), k.data(), v.data()) !=
                INF_STATUS_OK) {
                return false;
            }
        }
    }
    return true;
}

void bench_llama3_8b_decode(benchmark::State& state) {
    inf_device* device = nullptr;
    inf_model* model = nullptr;
    inf_page_pool* pool = nullptr;
    const int entries = kContext / kPage + 1;
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
    c.rope_scaling = INF_ROPE_SCALING_LLAMA3;
    c.rope_factor = 8.0F;
    c.rope_low_freq_factor = 1.0F;
    c.rope_high_freq_factor = 4.0F;
    c.rope_original_context = 8192;
    inf_page_pool_config p{};
    p.size = sizeof p;
    p.dtype = INF_DTYPE_BF16;
    p.layers = kLayers;
    p.kv_heads = kKvHeads;
    p.head_dim = kHeadDim;
    p.page_size = kPage;
    p.pages = entries;
    p.logical_page_size = 0;
    bool ready = ok(state, inf_device_create(INF_DEVICE_KIND_CUDA, 0, &device), "device");
    if (ready) {
        const Tensors tensors;  // host blocks: freed once the model holds its device copies
        ready = ok(state,
                   inf_model_create(device, &c, tensors.list.data(), static_cast<std::int32_t>(tensors.list.size()),
                                    nullptr, nullptr, &model),
                   "inf_model_create");
    }
    ready = ready && ok(state, inf_page_pool_create(device, &p, &pool), "inf_page_pool_create");
    if (ready && !fill_context(pool)) {
        ok(state, INF_STATUS_INTERNAL, "inf_page_pool_append");
        ready = false;
    }
    std::uint64_t model_bytes = 0;
    ready = ready && ok(state, inf_model_bytes(model, &model_bytes), "inf_model_bytes");
    if (ready) {
        std::vector<std::int32_t> page_ids(static_cast<std::size_t>(entries));
        for (int j = 0; j < entries; ++j)
            page_ids[static_cast<std::size_t>(j)] = j;
        const std::int32_t token = 17;
        const std::int32_t position = kContext;
        const std::int32_t q_starts[2] = {0, 1};
        const std::int32_t kv_length = kContext + 1;
        const std::int32_t page_starts[2] = {0, entries};
        const std::int32_t logit_token = 0;
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
        std::vector<float> logits(kVocab);
        // One warm-up step: cuBLAS's handle and the workspace are made on the first step.
        if (ok(state, inf_model_step(model, pool, &plan, logits.data()), "inf_model_step")) {
            std::int64_t steps = 0;
            const auto start = std::chrono::steady_clock::now();
            for (auto _ : state) {
                if (!ok(state, inf_model_step(model, pool, &plan, logits.data()), "inf_model_step"))
                    break;
                ++steps;
            }
            const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            const double ms = steps > 0 ? seconds * 1e3 / static_cast<double>(steps) : 0.0;
            const double embedding = 2.0 * kVocab * kDim;
            const double kv =
                2.0 /*K+V*/ * 2.0 /*bf16*/ * kLayers * static_cast<double>(kv_length) * kKvHeads * kHeadDim;
            const double bytes = static_cast<double>(model_bytes) - embedding + 2.0 * kDim + kv;
            const double traffic = cuda_copy_traffic(device);
            const double floor_ms = traffic > 0 ? bytes / traffic * 1e3 : 0.0;
            state.counters["ms/token"] = ms;
            state.counters["GB/token"] = bytes / 1e9;
            state.counters["copy_hbm_GBps"] = traffic / 1e9;
            state.counters["floor_ms"] = floor_ms;
            state.counters["pct_of_floor"] = ms > 0 ? floor_ms / ms * 100.0 : 0.0;
        }
    }
    inf_page_pool_destroy(pool);
    inf_model_destroy(model);
    inf_device_destroy(device);
}

}  // namespace

void register_cuda_model_benchmarks() {
    if (inf_backend_load(INF_DEVICE_KIND_CUDA) != INF_STATUS_OK) {
        return;  // no GPU here: nothing registered
    }
    benchmark::RegisterBenchmark(("model/decode/cuda/llama3-8b/ctx:" + std::to_string(kContext) + "/batch:1").c_str(),
                                 bench_llama3_8b_decode)
        ->Iterations(20)  // fixed: the setup (16 GB of weights, 4 GB of KV) must run once, not per estimate
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
}
