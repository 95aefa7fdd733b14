// The CPU forward step of a 12M-parameter Llama-shaped model through the C ABI (inf_model_step):
// dim 512, 4 layers, 8 q / 2 KV heads x 64, ffn 1536, vocab 512, random F32 weights; bf16 KV pool with
// pages of 64 (summaries on logical pages of 16). The context's K/V is written straight into the pool
// (random values), so decode rows need no prefill first.
//   model/decode/dense/ctx:N    ms per decoded token at batch 1 (ctx:64 is the non-attention floor).
//   model/decode/*/kv:i8/ctx:N  the same over an int8 KV pool (per-row scales): half the KV bytes of bf16.
//   model/decode/sparse/ctx:N   LServe: KV head 1 of each layer streaming (sink 128 + local 256), retrieval
//                               heads select pages under a 4096-token budget, reselecting every 4th step.
//   model/prefill/ctx:N         a prompt of N tokens in chunks of 2048 (one iteration): tokens/s.
//   model/decode/distributed/instances:I/ctx:N
//                               DistAttention over I in-process instances (one model and one bf16 pool each,
//                               no summaries), all stepping concurrently on their own threads: the context's
//                               pages are split evenly in contiguous blocks over the instances, the home
//                               (instance 0) holds the decode token's page; ms per decode step, exchange
//                               bytes per layer (all instances' sends, from inf_comm_get_info) and, with
//                               INFINITE_MODEL_PROFILE=1, the home's exchange time (packing, sending,
//                               waiting for the replies) and instance 1's serve time per layer. instances:1
//                               is the plain one-instance step. ctx:1048576 rows (~2 GiB of KV) are
//                               registered only with INFINITE_BENCH_LONG=1.
// Targets (2 threads): decode <= 5 ms/token at 32K dense, <= 3 ms sparse; prefill 32K >= 800 tokens/s.
//   model/ring/kv_bytes/ctx:N   KV bytes of one sequence with half its KV heads streaming: paged against a ring
//                               (sink 128, decode local 256, prefill local 8192, chunks of 2048).
//   model/ring/decode/ctx:32768 ms/token, streaming heads paged against in a ring (alternating, medians of 5).
// Run: build/native/bin/infinite_bench --benchmark_filter=model/
//      INFINITE_BENCH_LONG=1 INFINITE_MODEL_PROFILE=1 build/native/bin/infinite_bench --benchmark_filter=model/decode/distributed
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
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
inf_page_pool* make_pool(inf_device* device, int pages, int summary_bits = 32, inf_dtype dtype = INF_DTYPE_BF16,
                         int logical_page_size = 16) {
    inf_page_pool_config p{};
    p.size = sizeof p;
    p.dtype = dtype;
    p.layers = kLayers;
    p.kv_heads = kKvHeads;
    p.head_dim = kHeadDim;
    p.page_size = kPage;
    p.pages = pages;
    p.logical_page_size = logical_page_size;
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


// ---- distributed decode (DistAttention over in-process instances) ----

// Captures the model step profile line that a model logs when destroyed (INFINITE_MODEL_PROFILE=1).
void capture_log(void* user, inf_log_level, const char* message) {
    auto* lines = static_cast<std::vector<std::string>*>(user);
    if (std::strstr(message, "model step profile") != nullptr) lines->emplace_back(message);
}

// "... <name> <ms> ..." of a profile line (ms per step), or -1.
double profile_value(const std::vector<std::string>& lines, const char* name) {
    for (const std::string& line : lines) {
        const auto at = line.find("(ms/step):");
        if (at == std::string::npos) continue;
        const auto key = line.find(std::string(" ") + name + " ", at);
        if (key != std::string::npos) return std::strtod(line.c_str() + key + std::strlen(name) + 2, nullptr);
    }
    return -1.0;
}

// One instance's plan and the arrays it points at.
struct DistPlan {
    std::vector<std::int32_t> page_ids, page_positions;
    std::int32_t token = 17, position = 0, kv_length = 0, logit_token = 0;
    std::int32_t q_starts[2] = {0, 1};
    std::int32_t page_starts[2] = {0, 0};
    std::int32_t remote_sequences[4] = {}, remote_ranks[4] = {}, remote_sends_kv[4] = {};
    std::int32_t served_rank = 0, served_receives_kv = 0;
    std::int32_t served_q_starts[2] = {0, 1};
    std::int32_t served_page_starts[2] = {0, 0};
    inf_step_exchange ex{};
    inf_step_plan plan{};
};

// Rank r of n holds context pages [first, end) of the sequence (contiguous, even split); the home (rank 0)
// also holds the page of the decode token at position context.
void build_plan(DistPlan& d, int rank, int n, int context, inf_comm* comm) {
    const int pages = context / kPage;
    const int first = pages * rank / n;
    const int end = pages * (rank + 1) / n;
    for (int j = 0; j < end - first; ++j) {
        d.page_ids.push_back(j);
        d.page_positions.push_back((first + j) * kPage);
    }
    d.position = context;
    d.kv_length = context + 1;
    d.plan.size = sizeof d.plan;
    d.ex.size = sizeof d.ex;
    d.ex.comm = comm;
    if (rank == 0) {
        d.page_ids.push_back(end - first);  // the decode token's page, after the home's block
        d.page_positions.push_back(context);
        d.page_starts[1] = static_cast<std::int32_t>(d.page_ids.size());
        d.plan.sequences = 1;
        d.plan.tokens = 1;
        d.plan.logit_rows = 1;
        d.plan.token_ids = &d.token;
        d.plan.positions = &d.position;
        d.plan.q_starts = d.q_starts;
        d.plan.kv_lengths = &d.kv_length;
        d.plan.page_starts = d.page_starts;
        d.plan.page_ids = d.page_ids.data();
        d.plan.logit_tokens = &d.logit_token;
        for (int r = 1; r < n; ++r) {
            d.remote_ranks[r - 1] = r;
        }
        d.ex.remote_parts = n - 1;
        d.ex.remote_sequences = d.remote_sequences;
        d.ex.remote_ranks = d.remote_ranks;
        d.ex.remote_sends_kv = d.remote_sends_kv;
    } else {
        d.q_starts[1] = 0;
        d.plan.q_starts = d.q_starts;
        d.plan.page_starts = d.page_starts;
        d.served_page_starts[1] = static_cast<std::int32_t>(d.page_ids.size());
        d.ex.served_parts = 1;
        d.ex.served_ranks = &d.served_rank;
        d.ex.served_q_starts = d.served_q_starts;
        d.ex.served_positions = &d.position;
        d.ex.served_kv_lengths = &d.kv_length;
        d.ex.served_page_starts = d.served_page_starts;
        d.ex.served_page_ids = d.page_ids.data();
        d.ex.served_page_positions = d.page_positions.data();
        d.ex.served_receives_kv = &d.served_receives_kv;
    }
    if (n > 1) {
        d.plan.page_positions = rank == 0 ? d.page_positions.data() : nullptr;
        d.plan.exchange = &d.ex;
    }
}

void bench_distributed(benchmark::State& state, int n, int context) {
    std::vector<std::unique_ptr<BenchModel>> models;
    for (int r = 0; r < n; ++r) {
        models.push_back(std::make_unique<BenchModel>());
        if (models.back()->model == nullptr) {
            state.SkipWithError((std::string("model: ") + inf_last_error()).c_str());
            return;
        }
    }
    inf_comm_group* group = nullptr;
    std::vector<inf_comm*> comms(static_cast<std::size_t>(n), nullptr);
    std::vector<inf_page_pool*> pools(static_cast<std::size_t>(n), nullptr);
    std::vector<DistPlan> plans(static_cast<std::size_t>(n));
    auto release = [&] {
        for (auto* pool : pools) inf_page_pool_destroy(pool);
        for (auto* comm : comms) inf_comm_destroy(comm);
        inf_comm_group_destroy(group);
    };
    if (n > 1 && !ok(inf_comm_group_create(n, &group), state, "inf_comm_group_create")) return;
    const int pages = context / kPage;
    for (int r = 0; r < n; ++r) {
        const auto i = static_cast<std::size_t>(r);
        if (n > 1 && !ok(inf_comm_create_inproc(group, r, &comms[i]), state, "inf_comm_create_inproc")) return release();
        const int held = pages * (r + 1) / n - pages * r / n;
        pools[i] = make_pool(models[i]->device, held + 1, 32, INF_DTYPE_BF16, 0);
        if (pools[i] == nullptr || !fill_context(pools[i], held * kPage)) {
            state.SkipWithError((std::string("pool: ") + inf_last_error()).c_str());
            return release();
        }
        build_plan(plans[i], r, n, context, comms[i]);
    }

    // Instances 1 .. n-1 step on their own threads, in lockstep with instance 0 (this thread).
    std::barrier start(n);
    std::barrier done(n);
    std::atomic<bool> stop{false};
    std::vector<inf_status> statuses(static_cast<std::size_t>(n), INF_STATUS_OK);
    std::vector<std::string> errors(static_cast<std::size_t>(n));
    std::vector<float> logits(kVocab);
    auto step = [&](int r) {
        const auto i = static_cast<std::size_t>(r);
        statuses[i] = inf_model_step(models[i]->model, pools[i], &plans[i].plan, r == 0 ? logits.data() : nullptr);
        if (statuses[i] != INF_STATUS_OK) errors[i] = inf_last_error();
    };
    std::vector<std::thread> workers;
    for (int r = 1; r < n; ++r) {
        workers.emplace_back([&, r] {
            for (;;) {
                start.arrive_and_wait();
                if (stop.load()) return;
                step(r);
                done.arrive_and_wait();
            }
        });
    }
    std::int64_t step_id = 0;
    auto run_step = [&] {
        ++step_id;
        for (auto& p : plans) p.ex.step_id = step_id;
        start.arrive_and_wait();
        step(0);
        done.arrive_and_wait();
        for (int r = 0; r < n; ++r) {
            if (statuses[static_cast<std::size_t>(r)] != INF_STATUS_OK) {
                state.SkipWithError(("rank " + std::to_string(r) + ": " + errors[static_cast<std::size_t>(r)]).c_str());
                return false;
            }
        }
        return true;
    };
    auto sent_bytes = [&] {
        std::uint64_t total = 0;
        for (auto* comm : comms) {
            inf_comm_info info{};
            info.size = sizeof info;
            if (comm != nullptr && inf_comm_get_info(comm, &info) == INF_STATUS_OK) total += info.bytes_sent;
        }
        return total;
    };
    bool good = run_step();  // warm-up: workspaces grow once
    const std::uint64_t sent_before = sent_bytes();
    std::int64_t steps = 0;
    const auto begin = std::chrono::steady_clock::now();
    for (auto _ : state) {
        if (!good || !run_step()) break;
        ++steps;
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
    const std::uint64_t sent = sent_bytes() - sent_before;
    stop.store(true);
    start.arrive_and_wait();
    for (auto& w : workers) w.join();
    release();
    const double per_layer = steps > 0 ? 1.0 / (static_cast<double>(steps) * kLayers) : 0.0;
    state.counters["ms/step"] = steps > 0 ? seconds * 1e3 / static_cast<double>(steps) : 0.0;
    state.counters["exchange_B/layer"] = static_cast<double>(sent) * per_layer;
    // The profile lines come when the models are destroyed (steps include the warm-up).
    std::vector<std::string> lines;
    inf_set_log_callback(capture_log, &lines);
    models.clear();
    inf_set_log_callback(nullptr, nullptr);
    const double exchange = profile_value(lines, "exchange");
    if (n > 1 && exchange >= 0.0) {
        // lines[0] is instance 0's (models are destroyed in order).
        state.counters["exchange_ms/layer"] = profile_value({lines.front()}, "exchange") / kLayers;
        state.counters["serve_ms/layer"] = lines.size() > 1 ? profile_value({lines[1]}, "serve") / kLayers : 0.0;
    }
}

// ---- streaming heads in a ring (inf_streaming_ring) against the paged layout --------------------------------
// KV head 1 of every layer streams (half the KV heads); windows: decode sink 128 + local 256, prefill local
// 8192 with chunks of kChunk, so a ring holds sink 2 pages + ceil((8192 + 2048 - 2) / 64) + 1 = 161 pages.
constexpr int kRingSink = 128;
constexpr int kRingDecodeLocal = 256;
constexpr int kRingPrefillLocal = 8192;
constexpr int kRingPages = (kRingSink + kPage - 1) / kPage + (kRingPrefillLocal + kChunk - 2 + kPage - 1) / kPage + 1;

inf_page_pool* make_layered_pool(inf_device* device, int pages, const std::int32_t* layer_heads, int logical_page_size) {
    inf_page_pool_config p{};
    p.size = sizeof p;
    p.dtype = INF_DTYPE_BF16;
    p.layers = kLayers;
    p.kv_heads = kKvHeads;
    p.head_dim = kHeadDim;
    p.page_size = kPage;
    p.pages = pages;
    p.logical_page_size = logical_page_size;
    p.layer_kv_heads = layer_heads;
    inf_page_pool* pool = nullptr;
    return inf_page_pool_create(device, &p, &pool) == INF_STATUS_OK ? pool : nullptr;
}

std::uint64_t pool_bytes(inf_page_pool* pool) {
    std::uint64_t bytes = 0;
    inf_page_pool_bytes(pool, &bytes);
    return bytes;
}

// KV bytes one sequence of N tokens holds: paged, every head's pages; ring, the retrieval head's pages plus a
// fixed ring. Measured from one-page pools (inf_page_pool_bytes), so the figures include the summaries.
void bench_ring_bytes(benchmark::State& state, int context) {
    inf_device* device = nullptr;
    if (!ok(inf_device_create(INF_DEVICE_KIND_CPU, 0, &device), state, "inf_device_create")) return;
    const std::int32_t one[kLayers] = {1, 1, 1, 1};
    inf_page_pool* paged = make_pool(device, 1);
    inf_page_pool* retrieval = make_layered_pool(device, 1, one, 16);
    inf_page_pool* ring = make_layered_pool(device, 1, one, 0);
    const double pages = std::ceil(static_cast<double>(context) / kPage);
    double paged_bytes = 0;
    double ring_bytes = 0;
    for (auto _ : state) {
        paged_bytes = pages * static_cast<double>(pool_bytes(paged));
        ring_bytes = pages * static_cast<double>(pool_bytes(retrieval)) + kRingPages * static_cast<double>(pool_bytes(ring));
    }
    state.counters["paged_MiB"] = paged_bytes / 1048576.0;
    state.counters["ring_MiB"] = ring_bytes / 1048576.0;
    state.counters["ring/paged"] = ring_bytes / paged_bytes;
    inf_page_pool_destroy(paged);
    inf_page_pool_destroy(retrieval);
    inf_page_pool_destroy(ring);
    inf_device_destroy(device);
}

// Decode at 32K (batch 1, page selection under a 4096-token budget reselected every 4th step, as
// model/decode/sparse) with the streaming heads paged and in a ring, timed alternately: 5 rounds of
// `steps` decodes per side; the counters are the medians of the rounds (ms/token).
void bench_ring_decode(benchmark::State& state, int context) {
    BenchModel m;
    if (m.model == nullptr) {
        state.SkipWithError((std::string("model: ") + inf_last_error()).c_str());
        return;
    }
    const int entries = context / kPage + 1;
    const std::int32_t retrieval_heads[kLayers] = {1, 1, 1, 1};
    inf_page_pool* paged = make_pool(m.device, entries);
    inf_page_pool* retrieval = make_layered_pool(m.device, entries, retrieval_heads, 16);
    inf_page_pool* ring = make_layered_pool(m.device, kRingPages, retrieval_heads, 0);
    if (paged == nullptr || retrieval == nullptr || ring == nullptr || !fill_context(paged, context)) {
        state.SkipWithError((std::string("pool: ") + inf_last_error()).c_str());
        inf_page_pool_destroy(paged);
        inf_page_pool_destroy(retrieval);
        inf_page_pool_destroy(ring);
        return;
    }
    // One head's random K/V for every position: the retrieval pool by page j = entry j, the ring by its entries.
    {
        constexpr int kBlock = 4096;
        std::mt19937 engine(7);
        std::normal_distribution<float> normal(0.0F, 1.0F);
        std::vector<float> k(static_cast<std::size_t>(kBlock) * kHeadDim), v(k.size());
        for (float& x : k) x = normal(engine);
        for (float& x : v) x = normal(engine);
        std::vector<std::int32_t> pages(kBlock), ring_pages(kBlock), slots(kBlock);
        const int sink_pages = kRingSink / kPage;
        for (int layer = 0; layer < kLayers; ++layer) {
            for (int first = 0; first < context; first += kBlock) {
                const int count = std::min(kBlock, context - first);
                for (int i = 0; i < count; ++i) {
                    const int page = (first + i) / kPage;
                    pages[static_cast<std::size_t>(i)] = page;
                    ring_pages[static_cast<std::size_t>(i)] =
                        page < sink_pages ? page : sink_pages + (page - sink_pages) % (kRingPages - sink_pages);
                    slots[static_cast<std::size_t>(i)] = (first + i) % kPage;
                }
                inf_page_pool_append(retrieval, layer, count, pages.data(), slots.data(), k.data(), v.data());
                inf_page_pool_append(ring, layer, count, ring_pages.data(), slots.data(), k.data(), v.data());
            }
        }
    }
    std::vector<std::int32_t> page_ids(static_cast<std::size_t>(entries));
    for (int j = 0; j < entries; ++j) page_ids[static_cast<std::size_t>(j)] = j;
    std::vector<std::int32_t> ring_ids(kRingPages);
    for (int j = 0; j < kRingPages; ++j) ring_ids[static_cast<std::size_t>(j)] = j;
    const std::int32_t ring_starts[2] = {0, kRingPages};
    const std::int32_t token = 17;
    const std::int32_t position = context;
    const std::int32_t q_starts[2] = {0, 1};
    const std::int32_t kv_length = context + 1;
    const std::int32_t page_starts[2] = {0, entries};
    const std::int32_t logit_token = 0;
    std::vector<std::int32_t> streaming(kLayers * kKvHeads, 0);
    for (int l = 0; l < kLayers; ++l) streaming[static_cast<std::size_t>(l * kKvHeads + 1)] = 1;
    const std::int64_t slot_ints = std::int64_t{kLayers} * kKvHeads * (1 + 4096 / kPage);
    std::vector<std::int32_t> store_paged(static_cast<std::size_t>(slot_ints)), store_ring(store_paged.size());
    const std::int32_t slot = 0;
    std::int32_t reselect = 1;
    inf_streaming_ring ring_desc{};
    ring_desc.size = sizeof ring_desc;
    ring_desc.pool = ring;
    ring_desc.ring_starts = ring_starts;
    ring_desc.ring_pages = ring_ids.data();
    inf_sparse_step sp{};
    sp.size = sizeof sp;
    sp.streaming_heads = streaming.data();
    sp.decode_sink_tokens = sp.prefill_sink_tokens = kRingSink;
    sp.decode_local_tokens = kRingDecodeLocal;
    sp.prefill_local_tokens = kRingPrefillLocal;
    sp.budget_tokens = 4096;
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
    plan.sparse = &sp;
    std::vector<float> logits(kVocab);
    constexpr int kSteps = 40;
    constexpr int kRounds = 5;
    const auto side = [&](bool use_ring) {
        sp.ring = use_ring ? &ring_desc : nullptr;
        sp.selection_store = use_ring ? store_ring.data() : store_paged.data();
        inf_page_pool* pool = use_ring ? retrieval : paged;
        const auto start = std::chrono::steady_clock::now();
        for (int i = 0; i < kSteps; ++i) {
            reselect = i % 4 == 0 ? 1 : 0;
            if (!ok(inf_model_step(m.model, pool, &plan, logits.data()), state, "inf_model_step")) return -1.0;
        }
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() * 1e3 / kSteps;
    };
    std::vector<double> paged_ms, ring_ms;
    for (auto _ : state) {
        for (int round = 0; round < kRounds; ++round) {
            paged_ms.push_back(side(false));
            ring_ms.push_back(side(true));
        }
    }
    const auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v.empty() ? 0.0 : v[v.size() / 2];
    };
    state.counters["paged_ms/token"] = median(paged_ms);
    state.counters["ring_ms/token"] = median(ring_ms);
    inf_page_pool_destroy(paged);
    inf_page_pool_destroy(retrieval);
    inf_page_pool_destroy(ring);
}

struct Registrar {
    Registrar() {
        for (const int context : {32768, 131072, 1048576}) {
            benchmark::RegisterBenchmark(("model/ring/kv_bytes/ctx:" + std::to_string(context)).c_str(),
                                         [context](benchmark::State& s) { bench_ring_bytes(s, context); })
                ->Iterations(1);
        }
        benchmark::RegisterBenchmark("model/ring/decode/ctx:32768",
                                     [](benchmark::State& s) { bench_ring_decode(s, 32768); })
            ->UseRealTime()->Unit(benchmark::kMillisecond)->Iterations(1);
        // The scale run: 1M-token rows only on request (INFINITE_BENCH_LONG=1), they fill ~2 GiB of KV.
        const char* long_rows = std::getenv("INFINITE_BENCH_LONG");
        std::vector<int> contexts{131072};
        if (long_rows != nullptr && long_rows[0] == '1') contexts.push_back(1048576);
        for (const int context : contexts) {
            for (const int n : {1, 2, 4}) {
                const std::string name = "model/decode/distributed/instances:" + std::to_string(n) + "/ctx:" + std::to_string(context);
                benchmark::RegisterBenchmark(name.c_str(), [n, context](benchmark::State& s) { bench_distributed(s, n, context); })
                    ->UseRealTime()->Unit(benchmark::kMillisecond)->Iterations(context > 131072 ? 8 : 30);
            }
        }

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
