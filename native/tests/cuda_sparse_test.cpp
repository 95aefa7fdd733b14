// Unified sparse attention on CUDA through the C ABI: the Λ mask of streaming heads (decode and prefill,
// both prefill kernels), per-query-head page lists, and page selection. Each result is compared with a
// float64 reference in this file (computed on the values as stored, read back from the pool) and with
// the CPU backend on the same inputs (a CPU pool filled with the same appends). Skips, naming the
// reason, where inf_backend_load(CUDA) fails.
//
// Page selection ties: both backends rank entries by (score descending, entry index ascending), i.e. an
// equal score prefers the LOWER entry index; f32 sums in different orders may still differ in the last
// bits, so a selection may differ from another only by entries whose float64 score is within a small
// tolerance of the list's k-th score.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "cuda_test_util.h"
#include "test_util.h"

using inf_test::Buffer;
using inf_test::Device;
using inf_test::kNaN;
using inf_test::make_buffer;
using inf_test::make_device;
using inf_test::Pool;
using inf_test::PrefillMode;
using inf_test::random_nonzero;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

struct Shape {
    inf_dtype dtype = INF_DTYPE_BF16;
    int kv_heads = 4;
    int group = 2;
    int head_dim = 128;
    int page_size = 16;
    int logical_page_size = 16;
    int q_heads() const { return kv_heads * group; }
};

struct Problem {
    std::vector<int32_t> q_starts{0}, q_positions, kv_lengths, page_starts{0}, page_ids, page_positions;
    std::vector<int32_t> head_page_starts, head_page_indices;
    int per_query_head = 0;
    std::vector<int32_t> streaming;  // empty: all dense
    int sink = 0;
    int local = 0;
    std::vector<float> q;  // f32 [total_q][q_heads][head_dim]
};

class CudaSparse : public ::testing::Test {
protected:
    void SetUp() override {
        if (inf_backend_load(INF_DEVICE_KIND_CUDA) != INF_STATUS_OK) {
            GTEST_SKIP() << "no CUDA device: " << inf_last_error();
        }
        cuda_ = make_device(INF_DEVICE_KIND_CUDA, 0);
        ASSERT_NE(cuda_, nullptr);
        cpu_ = make_device(INF_DEVICE_KIND_CPU, 0);
        ASSERT_NE(cpu_, nullptr);
    }

    static Pool make_pool(inf_device* device, const Shape& shape, int pages) {
        return inf_test::make_pool(device, inf_test::pool_config(shape.dtype, 1, shape.kv_heads, shape.head_dim,
                                                                 shape.page_size, pages, shape.logical_page_size));
    }

    // Sequences of the given lengths over shuffled pages, the same random K/V appended to both pools;
    // q rows at the newest `rows[s]` positions. planted: (sequence, entry) pairs whose keys are set to
    // 3 * sign(q of row s, head 0 of each KV head's group), so they score highest for that q.
    Problem build(inf_page_pool* a, inf_page_pool* b, const Shape& shape, const std::vector<int>& lengths,
                  const std::vector<int>& rows, std::uint32_t seed, int pages,
                  const std::vector<std::pair<int, int>>& planted = {}) {
        std::mt19937 engine(seed);
        Problem problem;
        std::vector<int32_t> physical(static_cast<std::size_t>(pages));
        std::iota(physical.begin(), physical.end(), 0);
        std::shuffle(physical.begin(), physical.end(), engine);
        int next_page = 0;
        for (std::size_t s = 0; s < lengths.size(); ++s) {
            problem.kv_lengths.push_back(lengths[s]);
            const int count = (lengths[s] + shape.page_size - 1) / shape.page_size;
            for (int e = 0; e < count; ++e) {
                problem.page_ids.push_back(physical[static_cast<std::size_t>(next_page++)]);
                problem.page_positions.push_back(e * shape.page_size);
            }
            problem.page_starts.push_back(static_cast<int32_t>(problem.page_ids.size()));
            for (int r = 0; r < rows[s]; ++r) {
                problem.q_positions.push_back(std::max(0, lengths[s] - rows[s] + r));
            }
            problem.q_starts.push_back(static_cast<int32_t>(problem.q_positions.size()));
        }
        const int q_heads = shape.q_heads();
        const int dim = shape.head_dim;
        problem.q.resize(problem.q_positions.size() * static_cast<std::size_t>(q_heads * dim));
        for (float& x : problem.q) {
            x = 2.0f * random_nonzero(engine);
        }
        std::vector<int32_t> page_list, slots;
        std::vector<float> k, v;
        const int width = shape.kv_heads * dim;
        for (std::size_t s = 0; s < lengths.size(); ++s) {
            for (int t = 0; t < lengths[s]; ++t) {
                const int entry = t / shape.page_size;
                page_list.push_back(problem.page_ids[static_cast<std::size_t>(problem.page_starts[s] + entry)]);
                slots.push_back(t % shape.page_size);
                const bool plant = std::find(planted.begin(), planted.end(),
                                             std::make_pair(static_cast<int>(s), entry)) != planted.end();
                for (int i = 0; i < width; ++i) {
                    float key = random_nonzero(engine);
                    if (plant && rows[s] > 0) {
                        const int h = i / dim;
                        const float qv = problem.q[(static_cast<std::size_t>(problem.q_starts[s]) * q_heads +
                                                    static_cast<std::size_t>(h * shape.group)) * dim +
                                                   static_cast<std::size_t>(i % dim)];
                        key = qv > 0 ? 3.0f : -3.0f;
                    }
                    k.push_back(key);
                    v.push_back(random_nonzero(engine));
                }
            }
        }
        const auto tokens = static_cast<int32_t>(page_list.size());
        if (tokens > 0) {
            EXPECT_OK(inf_page_pool_append(a, 0, tokens, page_list.data(), slots.data(), k.data(), v.data()));
            EXPECT_OK(inf_page_pool_append(b, 0, tokens, page_list.data(), slots.data(), k.data(), v.data()));
        }
        return problem;
    }

    static inf_attention_batch batch_of(const Problem& problem, const Shape& shape) {
        inf_attention_batch batch{};
        batch.size = sizeof batch;
        batch.sequences = static_cast<int32_t>(problem.kv_lengths.size());
        batch.q_heads = shape.q_heads();
        batch.q_dtype = INF_DTYPE_F32;
        batch.q_starts = problem.q_starts.data();
        batch.q_positions = problem.q_positions.data();
        batch.kv_lengths = problem.kv_lengths.data();
        batch.page_starts = problem.page_starts.data();
        batch.page_ids = problem.page_ids.data();
        batch.page_positions = problem.page_positions.data();
        if (!problem.head_page_starts.empty()) {
            batch.head_page_starts = problem.head_page_starts.data();
            batch.head_page_indices = problem.head_page_indices.data();
            batch.head_lists_per_query_head = problem.per_query_head;
        }
        if (!problem.streaming.empty()) {
            batch.streaming_heads = problem.streaming.data();
        }
        batch.sink_tokens = problem.sink;
        batch.local_tokens = problem.local;
        return batch;
    }

    static void run(inf_device* device, inf_page_pool* pool, const Problem& problem, const Shape& shape,
                    std::vector<float>& o, std::vector<float>& lse) {
        const std::size_t total_q = problem.q_positions.size();
        const std::size_t rows = total_q * static_cast<std::size_t>(shape.q_heads());
        const std::size_t elements = rows * static_cast<std::size_t>(shape.head_dim);
        Buffer q = make_buffer(device, std::max<std::size_t>(elements * 4, 4));
        Buffer o_buffer = make_buffer(device, std::max<std::size_t>(elements * 4, 4));
        Buffer lse_buffer = make_buffer(device, std::max<std::size_t>(rows * 4, 4));
        ASSERT_OK(inf_buffer_write(q.get(), 0, problem.q.data(), elements * 4));
        ASSERT_OK(inf_buffer_fill(o_buffer.get(), 0, &kNaN, 4, elements));
        ASSERT_OK(inf_buffer_fill(lse_buffer.get(), 0, &kNaN, 4, rows));
        const inf_attention_batch batch = batch_of(problem, shape);
        ASSERT_OK(inf_attention_run(pool, 0, &batch, q.get(), o_buffer.get(), lse_buffer.get()));
        o.resize(elements);
        lse.resize(rows);
        ASSERT_OK(inf_buffer_read(o_buffer.get(), 0, o.data(), elements * 4));
        ASSERT_OK(inf_buffer_read(lse_buffer.get(), 0, lse.data(), rows * 4));
    }

    // float64 MicroAttention with the Λ mask and per-(sequence, KV or q head) lists.
    static void reference(inf_page_pool* pool, const Problem& problem, const Shape& shape, std::vector<double>& o,
                          std::vector<double>& lse) {
        const int q_heads = shape.q_heads();
        const int dim = shape.head_dim;
        const std::size_t page_floats = static_cast<std::size_t>(shape.kv_heads * shape.page_size * dim);
        const std::size_t total_q = problem.q_positions.size();
        o.assign(total_q * static_cast<std::size_t>(q_heads * dim), 0.0);
        lse.assign(total_q * static_cast<std::size_t>(q_heads), -kInf);
        std::vector<float> kp(page_floats), vp(page_floats);
        const double scale = 1.0 / std::sqrt(static_cast<double>(dim));
        for (std::size_t s = 0; s + 1 < problem.page_starts.size(); ++s) {
            const int base = problem.page_starts[s];
            const int count = problem.page_starts[s + 1] - base;
            // Decoded pages of the sequence.
            std::vector<std::vector<float>> keys(static_cast<std::size_t>(count)), values(static_cast<std::size_t>(count));
            for (int e = 0; e < count; ++e) {
                EXPECT_OK(inf_page_pool_read_page(pool, 0, problem.page_ids[static_cast<std::size_t>(base + e)], kp.data(),
                                                  vp.data()));
                keys[static_cast<std::size_t>(e)] = kp;
                values[static_cast<std::size_t>(e)] = vp;
            }
            for (int row = problem.q_starts[s]; row < problem.q_starts[s + 1]; ++row) {
                const int p = problem.q_positions[static_cast<std::size_t>(row)];
                for (int g = 0; g < q_heads; ++g) {
                    const int h = g / shape.group;
                    std::vector<int> list;
                    if (problem.head_page_starts.empty()) {
                        list.resize(static_cast<std::size_t>(count));
                        std::iota(list.begin(), list.end(), 0);
                    } else {
                        const std::size_t at = problem.per_query_head != 0
                                                   ? s * static_cast<std::size_t>(q_heads) + static_cast<std::size_t>(g)
                                                   : s * static_cast<std::size_t>(shape.kv_heads) + static_cast<std::size_t>(h);
                        for (int i = problem.head_page_starts[at]; i < problem.head_page_starts[at + 1]; ++i) {
                            list.push_back(problem.head_page_indices[static_cast<std::size_t>(i)]);
                        }
                    }
                    const bool streaming = !problem.streaming.empty() && problem.streaming[static_cast<std::size_t>(h)] != 0;
                    const float* qv = problem.q.data() + (static_cast<std::size_t>(row) * q_heads + static_cast<std::size_t>(g)) * dim;
                    std::vector<double> scores;
                    std::vector<const float*> vrows;
                    for (int e : list) {
                        for (int t = 0; t < shape.page_size; ++t) {
                            const long long position = problem.page_positions[static_cast<std::size_t>(base + e)] + t;
                            if (position >= problem.kv_lengths[s] || position > p) continue;
                            if (streaming && !(position < problem.sink || position > p - problem.local)) continue;
                            const std::size_t off = (static_cast<std::size_t>(h) * shape.page_size + static_cast<std::size_t>(t)) * dim;
                            const float* kr = keys[static_cast<std::size_t>(e)].data() + off;
                            double dot = 0;
                            for (int i = 0; i < dim; ++i) dot += static_cast<double>(qv[i]) * kr[i];
                            scores.push_back(dot * scale);
                            vrows.push_back(values[static_cast<std::size_t>(e)].data() + off);
                        }
                    }
                    const std::size_t out = static_cast<std::size_t>(row) * q_heads + static_cast<std::size_t>(g);
                    if (scores.empty()) continue;
                    const double m = *std::max_element(scores.begin(), scores.end());
                    double l = 0;
                    for (std::size_t i = 0; i < scores.size(); ++i) {
                        const double w = std::exp(scores[i] - m);
                        l += w;
                        for (int d = 0; d < dim; ++d) o[out * dim + static_cast<std::size_t>(d)] += w * vrows[i][d];
                    }
                    for (int d = 0; d < dim; ++d) o[out * dim + static_cast<std::size_t>(d)] /= l;
                    lse[out] = m + std::log(l);
                }
            }
        }
    }

    static void expect_close(const std::vector<float>& o, const std::vector<float>& lse, const std::vector<double>& ro,
                             const std::vector<double>& rlse, double tolerance, const char* what) {
        ASSERT_EQ(o.size(), ro.size());
        ASSERT_EQ(lse.size(), rlse.size());
        int bad = 0;
        for (std::size_t i = 0; i < lse.size() && bad < 5; ++i) {
            if (std::isinf(rlse[i])) {
                if (!(std::isinf(lse[i]) && lse[i] < 0)) {
                    ADD_FAILURE() << what << ": lse[" << i << "] = " << lse[i] << ", expected -inf";
                    ++bad;
                }
            } else if (!(std::fabs(lse[i] - rlse[i]) <= tolerance * std::max(1.0, std::fabs(rlse[i])))) {
                ADD_FAILURE() << what << ": lse[" << i << "] = " << lse[i] << ", expected " << rlse[i];
                ++bad;
            }
        }
        for (std::size_t i = 0; i < o.size() && bad < 5; ++i) {
            if (!(std::fabs(o[i] - ro[i]) <= tolerance * std::max(1.0, std::fabs(ro[i])))) {
                ADD_FAILURE() << what << ": o[" << i << "] = " << o[i] << ", expected " << ro[i];
                ++bad;
            }
        }
    }

    // Runs problem on CUDA (and CPU), compares both with the reference and with each other.
    void check_attention(const Shape& shape, const Problem& problem, inf_page_pool* gpu, inf_page_pool* cpu,
                         const char* what) {
        std::vector<double> ro, rlse;
        reference(gpu, problem, shape, ro, rlse);
        const double tolerance = shape.dtype == INF_DTYPE_F32 ? 1e-4 : 2e-2;
        std::vector<float> o, lse, co, clse;
        run(cuda_.get(), gpu, problem, shape, o, lse);
        expect_close(o, lse, ro, rlse, tolerance, what);
        run(cpu_.get(), cpu, problem, shape, co, clse);
        std::vector<double> cod(co.begin(), co.end()), clsed(clse.begin(), clse.end());
        expect_close(o, lse, cod, clsed, tolerance, (std::string(what) + " vs cpu").c_str());
    }

    Device cuda_;
    Device cpu_;
};

// Mixed streaming and dense KV heads; sink and local windows not multiples of the tile (exercises the
// partial tiles at both edges of the gap); some sequences shorter than sink + local (no gap at all).
Problem lambda_problem(const Problem& base) {
    Problem problem = base;
    problem.streaming = {1, 0, 1, 0};
    problem.sink = 40;
    problem.local = 72;
    return problem;
}

TEST_F(CudaSparse, LambdaMaskDecode) {
    for (inf_dtype dtype : {INF_DTYPE_BF16, INF_DTYPE_F16, INF_DTYPE_F32}) {
        Shape shape;
        shape.dtype = dtype;
        Pool gpu = make_pool(cuda_.get(), shape, 700);
        Pool cpu = make_pool(cpu_.get(), shape, 700);
        // 6000 keys: long enough for the split-KV path.
        Problem problem = lambda_problem(build(gpu.get(), cpu.get(), shape, {1000, 77, 300, 6000, 5}, {1, 1, 1, 1, 1}, 11, 700));
        check_attention(shape, problem, gpu.get(), cpu.get(), "Λ decode");
    }
}

TEST_F(CudaSparse, LambdaMaskPrefillBothKernels) {
    for (inf_dtype dtype : {INF_DTYPE_BF16, INF_DTYPE_F16}) {
        for (int head_dim : {64, 128}) {
            Shape shape;
            shape.dtype = dtype;
            shape.head_dim = head_dim;
            shape.page_size = 32;
            Pool gpu = make_pool(cuda_.get(), shape, 200);
            Pool cpu = make_pool(cpu_.get(), shape, 200);
            Problem problem =
                lambda_problem(build(gpu.get(), cpu.get(), shape, {700, 64, 1200, 300}, {128, 64, 200, 300}, 12, 200));
            for (const char* mode : {"mma", "simt"}) {
                PrefillMode scope(mode);
                check_attention(shape, problem, gpu.get(), cpu.get(), mode);
            }
        }
    }
}

// A prefill whose rows all lie far past sink + local: whole CTAs skip the middle of the context.
TEST_F(CudaSparse, LambdaMaskPrefillChunkAtEndOfLongContext) {
    Shape shape;
    shape.page_size = 64;
    Pool gpu = make_pool(cuda_.get(), shape, 200);
    Pool cpu = make_pool(cpu_.get(), shape, 200);
    Problem problem = lambda_problem(build(gpu.get(), cpu.get(), shape, {9000}, {96}, 13, 200));
    problem.sink = 128;
    problem.local = 256;
    for (const char* mode : {"mma", "simt"}) {
        PrefillMode scope(mode);
        check_attention(shape, problem, gpu.get(), cpu.get(), mode);
    }
}

// Random lists per (sequence, q head): the group's q heads read different pages; with Λ heads too.
TEST_F(CudaSparse, PerQueryHeadLists) {
    Shape shape;
    Pool gpu = make_pool(cuda_.get(), shape, 600);
    Pool cpu = make_pool(cpu_.get(), shape, 600);
    for (int rows : {1, 40}) {
        Problem problem = build(gpu.get(), cpu.get(), shape, {900, 100, 4000}, {rows, rows, rows}, 14 + static_cast<std::uint32_t>(rows), 600);
        std::mt19937 engine(99);
        problem.per_query_head = 1;
        problem.head_page_starts = {0};
        for (std::size_t s = 0; s + 1 < problem.page_starts.size(); ++s) {
            const int count = problem.page_starts[s + 1] - problem.page_starts[s];
            for (int g = 0; g < shape.q_heads(); ++g) {
                for (int e = 0; e < count; ++e) {
                    if (g == 3 || engine() % 3 == 0) {  // q head 3 reads nothing of some sequences... or all
                        if (g == 3 && s == 1) continue;
                        problem.head_page_indices.push_back(e);
                    }
                }
                problem.head_page_starts.push_back(static_cast<int32_t>(problem.head_page_indices.size()));
            }
        }
        check_attention(shape, problem, gpu.get(), cpu.get(), rows == 1 ? "per-q-head decode" : "per-q-head prefill");
        problem = lambda_problem(problem);
        check_attention(shape, problem, gpu.get(), cpu.get(), rows == 1 ? "per-q-head Λ decode" : "per-q-head Λ prefill");
    }
}

// ---- page selection ----

struct Selection {
    std::vector<int32_t> starts, indices;
};

class CudaPageSelect : public CudaSparse {
protected:
    static Selection select(inf_device* device, inf_page_pool* pool, const Problem& problem, const Shape& shape,
                            int budget_tokens, int per_query_head) {
        const int sequences = static_cast<int>(problem.kv_lengths.size());
        std::vector<int32_t> q_rows;
        for (int s = 0; s < sequences; ++s) q_rows.push_back(problem.q_starts[static_cast<std::size_t>(s)]);
        const std::size_t elements = problem.q.size();
        Buffer q = make_buffer(device, std::max<std::size_t>(elements * 4, 4));
        EXPECT_OK(inf_buffer_write(q.get(), 0, problem.q.data(), elements * 4));
        inf_page_selection selection{};
        selection.size = sizeof selection;
        selection.sequences = sequences;
        selection.q_heads = shape.q_heads();
        selection.q_dtype = INF_DTYPE_F32;
        selection.budget_tokens = budget_tokens;
        selection.per_query_head = per_query_head;
        selection.q_rows = q_rows.data();
        selection.kv_lengths = problem.kv_lengths.data();
        selection.page_starts = problem.page_starts.data();
        selection.page_ids = problem.page_ids.data();
        selection.page_positions = problem.page_positions.data();
        const int lists = sequences * (per_query_head != 0 ? shape.q_heads() : shape.kv_heads);
        Selection out;
        out.starts.assign(static_cast<std::size_t>(lists + 1), -7);
        out.indices.assign(problem.page_ids.size() * static_cast<std::size_t>(shape.q_heads()) + 1, -7);
        EXPECT_OK(inf_page_select(pool, 0, &selection, q.get(), out.starts.data(), out.indices.data(),
                                  static_cast<int64_t>(out.indices.size())));
        return out;
    }

    // float64 score of every entry for every list: [list][entry of its sequence], -inf when no
    // sub-page holds a key < kv_length.
    static std::vector<std::vector<double>> scores(inf_page_pool* pool, const Problem& problem, const Shape& shape,
                                                   int per_query_head) {
        const int subs = shape.page_size / shape.logical_page_size;
        const int dim = shape.head_dim;
        const int heads_axis = per_query_head != 0 ? shape.q_heads() : shape.kv_heads;
        std::vector<float> summary(static_cast<std::size_t>(shape.kv_heads * subs * 2 * dim));
        std::vector<std::vector<double>> out;
        for (std::size_t s = 0; s + 1 < problem.page_starts.size(); ++s) {
            const int base = problem.page_starts[s];
            const int count = problem.page_starts[s + 1] - base;
            std::vector<std::vector<double>> lists(static_cast<std::size_t>(heads_axis),
                                                   std::vector<double>(static_cast<std::size_t>(count), -kInf));
            const float* q = problem.q.data() + static_cast<std::size_t>(problem.q_starts[s]) * shape.q_heads() * dim;
            for (int e = 0; e < count; ++e) {
                EXPECT_OK(inf_page_pool_read_summary(pool, 0, problem.page_ids[static_cast<std::size_t>(base + e)], summary.data()));
                for (int g = 0; g < shape.q_heads(); ++g) {
                    const int h = g / shape.group;
                    double best = -kInf;
                    for (int l = 0; l < subs; ++l) {
                        if (problem.page_positions[static_cast<std::size_t>(base + e)] + l * shape.logical_page_size >=
                            problem.kv_lengths[s]) break;
                        const float* kmin = summary.data() + (static_cast<std::size_t>(h) * subs + static_cast<std::size_t>(l)) * 2 * dim;
                        const float* kmax = kmin + dim;
                        double sum = 0;
                        for (int i = 0; i < dim; ++i) {
                            const double qi = q[static_cast<std::size_t>(g) * dim + static_cast<std::size_t>(i)];
                            sum += std::max(qi * kmax[i], qi * kmin[i]);
                        }
                        best = std::max(best, sum);
                    }
                    const int list = per_query_head != 0 ? g : h;
                    double& slot = lists[static_cast<std::size_t>(list)][static_cast<std::size_t>(e)];
                    slot = per_query_head != 0 ? best : std::max(slot, best);
                }
            }
            for (auto& list : lists) out.push_back(std::move(list));
        }
        return out;
    }

    // Checks the form of a selection and that it is a valid top-k of the float64 scores up to near-ties.
    static void check_selection(const Selection& got, const Problem& problem, const Shape& shape, int budget_tokens,
                                const std::vector<std::vector<double>>& ref, int per_query_head, const char* what) {
        const int heads_axis = per_query_head != 0 ? shape.q_heads() : shape.kv_heads;
        const int budget = std::max(1, budget_tokens / shape.page_size);
        ASSERT_EQ(got.starts[0], 0) << what;
        int list = 0;
        for (std::size_t s = 0; s + 1 < problem.page_starts.size(); ++s) {
            const int count = problem.page_starts[s + 1] - problem.page_starts[s];
            const int k = std::min(count, budget);
            int newest = -1;
            for (int e = 0; e < count && problem.kv_lengths[s] > 0; ++e) {
                const int first = problem.page_positions[static_cast<std::size_t>(problem.page_starts[s] + e)];
                if (problem.kv_lengths[s] - 1 >= first && problem.kv_lengths[s] - 1 < first + shape.page_size) {
                    newest = e;
                    break;
                }
            }
            for (int h = 0; h < heads_axis; ++h, ++list) {
                const int begin = got.starts[static_cast<std::size_t>(list)];
                const int end = got.starts[static_cast<std::size_t>(list) + 1];
                ASSERT_EQ(end - begin, k) << what << ": list " << list;
                std::vector<int> chosen(got.indices.begin() + begin, got.indices.begin() + end);
                ASSERT_TRUE(std::is_sorted(chosen.begin(), chosen.end())) << what;
                ASSERT_EQ(std::set<int>(chosen.begin(), chosen.end()).size(), chosen.size()) << what;
                for (int e : chosen) ASSERT_TRUE(e >= 0 && e < count) << what;
                if (newest >= 0) {
                    EXPECT_TRUE(std::binary_search(chosen.begin(), chosen.end(), newest)) << what << ": newest entry missing";
                }
                // Every chosen entry other than the newest must score >= every unchosen one (up to ties).
                const std::vector<double>& sc = ref[static_cast<std::size_t>(list)];
                double worst_chosen = kInf;
                double best_unchosen = -kInf;
                for (int e = 0; e < count; ++e) {
                    const bool in = std::binary_search(chosen.begin(), chosen.end(), e);
                    if (in && e != newest) worst_chosen = std::min(worst_chosen, sc[static_cast<std::size_t>(e)]);
                    if (!in) best_unchosen = std::max(best_unchosen, sc[static_cast<std::size_t>(e)]);
                }
                if (worst_chosen != kInf && best_unchosen != -kInf) {
                    EXPECT_GE(worst_chosen, best_unchosen - 1e-3 * std::max(1.0, std::fabs(best_unchosen)))
                        << what << ": list " << list;
                }
            }
        }
    }

    // Selections a and b differ only by entries whose score is within a near-tie of each list's cut.
    static void expect_same_up_to_ties(const Selection& a, const Selection& b, const std::vector<std::vector<double>>& ref,
                                       const char* what) {
        ASSERT_EQ(a.starts, b.starts) << what;
        for (std::size_t list = 0; list + 1 < a.starts.size(); ++list) {
            std::set<int> sa(a.indices.begin() + a.starts[list], a.indices.begin() + a.starts[list + 1]);
            std::set<int> sb(b.indices.begin() + b.starts[list], b.indices.begin() + b.starts[list + 1]);
            if (sa == sb) continue;
            double cut = kInf;
            for (int e : sa) cut = std::min(cut, ref[list][static_cast<std::size_t>(e)]);
            for (int e : sa) {
                if (sb.count(e) == 0) {
                    EXPECT_NEAR(ref[list][static_cast<std::size_t>(e)], cut, 1e-3 * std::max(1.0, std::fabs(cut)))
                        << what << ": list " << list << " entry " << e << " differs and is not a near-tie";
                }
            }
        }
    }
};

TEST_F(CudaPageSelect, MatchesReferenceAndCpu) {
    Shape shape;
    shape.page_size = 64;
    shape.logical_page_size = 16;
    shape.head_dim = 128;
    Pool gpu = make_pool(cuda_.get(), shape, 400);
    Pool cpu = make_pool(cpu_.get(), shape, 400);
    // Partial last pages (including a last logical sub-page partly written), a sequence within budget,
    // a long one (> 256 entries: several radix passes over many entries), and an empty one.
    Problem problem = build(gpu.get(), cpu.get(), shape, {3000, 200, 17000, 0, 1000}, {1, 1, 1, 0, 1}, 21, 400);
    // An empty sequence has no q row of its own: point it at row 0 (q_rows reads q_starts[s]).
    for (int per_q : {0, 1}) {
        for (int budget_tokens : {256, 640, 4096, 10}) {
            const auto ref = scores(gpu.get(), problem, shape, per_q);
            const Selection a = select(cuda_.get(), gpu.get(), problem, shape, budget_tokens, per_q);
            const std::string what = "cuda per_q=" + std::to_string(per_q) + " budget=" + std::to_string(budget_tokens);
            check_selection(a, problem, shape, budget_tokens, ref, per_q, what.c_str());
            const Selection b = select(cpu_.get(), cpu.get(), problem, shape, budget_tokens, per_q);
            expect_same_up_to_ties(a, b, ref, ("cuda vs cpu " + what).c_str());
        }
    }
}

TEST_F(CudaPageSelect, PicksPlantedPages) {
    Shape shape;
    shape.page_size = 64;
    shape.logical_page_size = 16;
    shape.head_dim = 64;
    Pool gpu = make_pool(cuda_.get(), shape, 300);
    Pool cpu = make_pool(cpu_.get(), shape, 300);
    const std::vector<std::pair<int, int>> planted = {{0, 3}, {0, 100}, {0, 57}, {1, 0}, {1, 9}};
    Problem problem = build(gpu.get(), cpu.get(), shape, {10000, 1500}, {1, 1}, 22, 300, planted);
    // Budget 4 pages: the 3 planted pages (of seq 0) + the newest; seq 1: 2 planted + newest + 1 more.
    for (int per_q : {0, 1}) {
        const Selection a = select(cuda_.get(), gpu.get(), problem, shape, 4 * 64, per_q);
        const Selection b = select(cpu_.get(), cpu.get(), problem, shape, 4 * 64, per_q);
        const int heads_axis = per_q != 0 ? shape.q_heads() : shape.kv_heads;
        for (int s = 0; s < 2; ++s) {
            // Planted keys match the sign of q head 0 of each group: per KV head lists and q head 0's lists.
            for (int h = 0; h < heads_axis; ++h) {
                if (per_q != 0 && h % shape.group != 0) continue;
                const std::size_t list = static_cast<std::size_t>(s * heads_axis + h);
                for (const Selection* sel : {&a, &b}) {
                    std::set<int> chosen(sel->indices.begin() + sel->starts[list], sel->indices.begin() + sel->starts[list + 1]);
                    for (const auto& [ps, pe] : planted) {
                        if (ps == s) {
                            EXPECT_EQ(chosen.count(pe), 1u) << (sel == &a ? "cuda" : "cpu") << " list " << list << " entry " << pe;
                        }
                    }
                    const int newest = (problem.kv_lengths[static_cast<std::size_t>(s)] - 1) / shape.page_size;
                    EXPECT_EQ(chosen.count(newest), 1u) << "newest page of sequence " << s;
                }
            }
        }
    }
}

}  // namespace
