// The CUDA paged-KV kernels (kv_append, split-KV attention, merge) through the C ABI, against a float64
// reference computed on the values as stored (read back with inf_page_pool_read_page). Skips, naming
// the reason, where inf_backend_load(CUDA) fails.
//
// Prefill runs through the tensor-core kernel (prefill_attention.cu) or the SIMT split-KV kernel; the
// INFINITE_CUDA_PREFILL environment variable (read by the plug-in at every attention call) forces one:
// the Prefill*Paths tests run the same inputs through both and compare each with the reference and
// with each other.
//
// Inputs are random and never zero; outputs are poisoned with NaN before every kernel so that an
// element the kernel forgets to write fails the comparison. Tolerances: f32 1e-4, f16/bf16 2e-2
// (relative to max(1, |reference|); o is a convex mix of values in [-1, 1]).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>
#include <random>
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

// f32 -> f16 / bf16 bits, round to nearest even (finite, normal-range inputs), for q in the pool's dtype.
std::uint16_t to_bf16(float x) {
    std::uint32_t bits = 0;
    std::memcpy(&bits, &x, 4);
    bits += 0x7FFFu + ((bits >> 16) & 1u);
    return static_cast<std::uint16_t>(bits >> 16);
}
float from_bf16(std::uint16_t h) {
    const std::uint32_t bits = static_cast<std::uint32_t>(h) << 16;
    float x = 0;
    std::memcpy(&x, &bits, 4);
    return x;
}

// f32 -> f16 bits, round to nearest even; normal-range inputs only (|x| in [2^-14, 65504]).
std::uint16_t to_f16(float x) {
    std::uint32_t bits = 0;
    std::memcpy(&bits, &x, 4);
    const std::uint32_t sign = (bits >> 16) & 0x8000u;
    const std::uint32_t exponent = ((bits >> 23) & 0xFFu) - 127u + 15u;
    const std::uint32_t mantissa = bits & 0x7FFFFFu;
    std::uint32_t h = sign | (exponent << 10) | (mantissa >> 13);
    const std::uint32_t rest = mantissa & 0x1FFFu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u) != 0)) {
        ++h;  // a carry into the exponent is the correct rounding too
    }
    return static_cast<std::uint16_t>(h);
}
float from_f16(std::uint16_t h) {
    const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
    const std::uint32_t exponent = (h >> 10) & 0x1Fu;
    const std::uint32_t mantissa = h & 0x3FFu;
    std::uint32_t bits = sign;
    if (exponent != 0) {  // normal (the only kind to_f16 makes from the test's values)
        bits |= ((exponent - 15u + 127u) << 23) | (mantissa << 13);
    }
    float x = 0;
    std::memcpy(&x, &bits, 4);
    return x;
}

// q as the kernel sees it: f32 unchanged, or rounded to the 2-byte dtype it is given in.
double q_as_given(float x, inf_dtype q_dtype) {
    switch (q_dtype) {
        case INF_DTYPE_BF16: return from_bf16(to_bf16(x));
        case INF_DTYPE_F16: return from_f16(to_f16(x));
        default: return x;
    }
}

struct Shape {
    inf_dtype dtype = INF_DTYPE_BF16;
    int kv_heads = 2;
    int group = 4;
    int head_dim = 128;
    int page_size = 16;
    int logical_page_size = 16;
};

// One attention problem: sequences with kv lengths, q rows (the newest `rows` positions), page lists.
struct Problem {
    std::vector<int32_t> q_starts{0}, q_positions, kv_lengths, page_starts{0}, page_ids, page_positions;
    std::vector<int32_t> head_page_starts, head_page_indices;  // empty: every head reads the table
    std::vector<float> q;                                       // [total_q][q_heads][head_dim]
};

class CudaAttention : public ::testing::Test {
protected:
    void SetUp() override {
        if (inf_backend_load(INF_DEVICE_KIND_CUDA) != INF_STATUS_OK) {
            GTEST_SKIP() << "no CUDA device: " << inf_last_error();
        }
        device_ = make_device(INF_DEVICE_KIND_CUDA, 0);
        ASSERT_NE(device_, nullptr);
        cpu_ = make_device(INF_DEVICE_KIND_CPU, 0);
    }

    static Pool make_pool(inf_device* device, const Shape& shape, int pages) {
        return inf_test::make_pool(device, inf_test::pool_config(shape.dtype, /*layers=*/1, shape.kv_heads,
                                                                 shape.head_dim, shape.page_size, pages,
                                                                 shape.logical_page_size));
    }

    // Builds sequences of the given kv lengths and query rows over shuffled physical pages of pool, fills
    // them with random K/V through inf_page_pool_append (one append for the whole batch, so tokens of one
    // logical page share the call), and draws q.
    Problem build(inf_page_pool* pool, const Shape& shape, const std::vector<int>& lengths,
                  const std::vector<int>& rows, std::uint32_t seed) {
        std::mt19937 engine(seed);
        Problem problem;
        int next_page = 0;
        inf_page_pool_config config{};
        config.size = sizeof config;
        EXPECT_OK(inf_page_pool_get_config(pool, &config));
        std::vector<int32_t> physical(static_cast<std::size_t>(config.pages));
        std::iota(physical.begin(), physical.end(), 0);
        std::shuffle(physical.begin(), physical.end(), engine);
        std::vector<int32_t> pages, slots;
        std::vector<float> k, v;
        const int width = shape.kv_heads * shape.head_dim;
        for (std::size_t s = 0; s < lengths.size(); ++s) {
            const int length = lengths[s];
            problem.kv_lengths.push_back(length);
            const int count = (length + shape.page_size - 1) / shape.page_size;
            for (int e = 0; e < count; ++e) {
                problem.page_ids.push_back(physical[static_cast<std::size_t>(next_page++)]);
                problem.page_positions.push_back(e * shape.page_size);
            }
            problem.page_starts.push_back(static_cast<int32_t>(problem.page_ids.size()));
            for (int t = 0; t < length; ++t) {
                pages.push_back(problem.page_ids[static_cast<std::size_t>(problem.page_starts[s] + t / shape.page_size)]);
                slots.push_back(t % shape.page_size);
                for (int i = 0; i < width; ++i) {
                    k.push_back(random_nonzero(engine));
                    v.push_back(random_nonzero(engine));
                }
            }
            for (int r = 0; r < rows[s]; ++r) {
                problem.q_positions.push_back(std::max(0, length - rows[s] + r));
            }
            problem.q_starts.push_back(static_cast<int32_t>(problem.q_positions.size()));
        }
        if (!pages.empty()) {
            EXPECT_OK(inf_page_pool_append(pool, 0, static_cast<int32_t>(pages.size()), pages.data(), slots.data(),
                                           k.data(), v.data()));
        }
        const int q_heads = shape.kv_heads * shape.group;
        problem.q.resize(problem.q_positions.size() * static_cast<std::size_t>(q_heads * shape.head_dim));
        for (float& x : problem.q) {
            x = 2.0f * random_nonzero(engine);  // a little sharper than uniform softmax
        }
        return problem;
    }

    static inf_attention_batch batch_of(const Problem& problem, const Shape& shape, inf_dtype q_dtype) {
        inf_attention_batch batch{};
        batch.size = sizeof batch;
        batch.sequences = static_cast<int32_t>(problem.kv_lengths.size());
        batch.q_heads = shape.kv_heads * shape.group;
        batch.q_dtype = q_dtype;
        batch.scale = 0.0f;
        batch.q_starts = problem.q_starts.data();
        batch.q_positions = problem.q_positions.data();
        batch.kv_lengths = problem.kv_lengths.data();
        batch.page_starts = problem.page_starts.data();
        batch.page_ids = problem.page_ids.data();
        batch.page_positions = problem.page_positions.data();
        if (!problem.head_page_starts.empty()) {
            batch.head_page_starts = problem.head_page_starts.data();
            batch.head_page_indices = problem.head_page_indices.data();
        }
        return batch;
    }

    // Runs attention on pool (on device) and returns o and lse read back.
    void run(inf_device* device, inf_page_pool* pool, const Problem& problem, const Shape& shape, inf_dtype q_dtype,
             std::vector<float>& o, std::vector<float>& lse) {
        const int q_heads = shape.kv_heads * shape.group;
        const std::size_t total_q = problem.q_positions.size();
        const std::size_t elements = total_q * static_cast<std::size_t>(q_heads * shape.head_dim);
        std::vector<unsigned char> q_bytes;
        if (q_dtype == INF_DTYPE_BF16 || q_dtype == INF_DTYPE_F16) {
            std::vector<std::uint16_t> half(elements);
            std::transform(problem.q.begin(), problem.q.end(), half.begin(), q_dtype == INF_DTYPE_BF16 ? to_bf16 : to_f16);
            q_bytes.resize(elements * 2);
            std::memcpy(q_bytes.data(), half.data(), q_bytes.size());
        } else {
            q_bytes.resize(elements * 4);
            std::memcpy(q_bytes.data(), problem.q.data(), q_bytes.size());
        }
        Buffer q = make_buffer(device, std::max<std::size_t>(q_bytes.size(), 4));
        Buffer o_buffer = make_buffer(device, std::max<std::size_t>(elements * 4, 4));
        Buffer lse_buffer = make_buffer(device, std::max<std::size_t>(total_q * q_heads * 4, 4));
        ASSERT_OK(inf_buffer_write(q.get(), 0, q_bytes.data(), q_bytes.size()));
        ASSERT_OK(inf_buffer_fill(o_buffer.get(), 0, &kNaN, 4, elements));
        ASSERT_OK(inf_buffer_fill(lse_buffer.get(), 0, &kNaN, 4, total_q * q_heads));
        const inf_attention_batch batch = batch_of(problem, shape, q_dtype);
        ASSERT_OK(inf_attention_run(pool, 0, &batch, q.get(), o_buffer.get(), lse_buffer.get()));
        o.resize(elements);
        lse.resize(total_q * q_heads);
        ASSERT_OK(inf_buffer_read(o_buffer.get(), 0, o.data(), elements * 4));
        ASSERT_OK(inf_buffer_read(lse_buffer.get(), 0, lse.data(), lse.size() * 4));
    }

    // float64 MicroAttention on the stored values (pages read back as float32).
    static void reference(inf_page_pool* pool, const Problem& problem, const Shape& shape, inf_dtype q_dtype,
                          std::vector<double>& o, std::vector<double>& lse) {
        const int q_heads = shape.kv_heads * shape.group;
        const int dim = shape.head_dim;
        const std::size_t page_floats = static_cast<std::size_t>(shape.kv_heads * shape.page_size * dim);
        std::vector<float> kp(page_floats), vp(page_floats);
        const std::size_t total_q = problem.q_positions.size();
        o.assign(total_q * static_cast<std::size_t>(q_heads * dim), 0.0);
        lse.assign(total_q * static_cast<std::size_t>(q_heads), -std::numeric_limits<double>::infinity());
        const double scale = 1.0 / std::sqrt(static_cast<double>(dim));
        for (std::size_t s = 0; s + 1 < problem.page_starts.size(); ++s) {
            const int base = problem.page_starts[s];
            for (int head = 0; head < shape.kv_heads; ++head) {
                std::vector<int> entries;
                if (problem.head_page_starts.empty()) {
                    for (int j = base; j < problem.page_starts[s + 1]; ++j) entries.push_back(j);
                } else {
                    const std::size_t list = s * static_cast<std::size_t>(shape.kv_heads) + static_cast<std::size_t>(head);
                    for (int i = problem.head_page_starts[list]; i < problem.head_page_starts[list + 1]; ++i) {
                        entries.push_back(base + problem.head_page_indices[static_cast<std::size_t>(i)]);
                    }
                }
                // Keys of this head: (position, k, v) from the stored pages.
                std::vector<int> positions;
                std::vector<double> keys, values;
                for (int j : entries) {
                    ASSERT_OK(inf_page_pool_read_page(pool, 0, problem.page_ids[static_cast<std::size_t>(j)], kp.data(),
                                                      vp.data()));
                    for (int t = 0; t < shape.page_size; ++t) {
                        positions.push_back(problem.page_positions[static_cast<std::size_t>(j)] + t);
                        const std::size_t at = (static_cast<std::size_t>(head) * shape.page_size + t) * dim;
                        keys.insert(keys.end(), kp.begin() + static_cast<std::ptrdiff_t>(at),
                                    kp.begin() + static_cast<std::ptrdiff_t>(at + dim));
                        values.insert(values.end(), vp.begin() + static_cast<std::ptrdiff_t>(at),
                                      vp.begin() + static_cast<std::ptrdiff_t>(at + dim));
                    }
                }
                for (int row = problem.q_starts[s]; row < problem.q_starts[s + 1]; ++row) {
                    const int q_position = problem.q_positions[static_cast<std::size_t>(row)];
                    for (int g = 0; g < shape.group; ++g) {
                        const int q_head = head * shape.group + g;
                        const std::size_t out = static_cast<std::size_t>(row) * q_heads + q_head;
                        const float* qv = problem.q.data() + out * dim;
                        std::vector<double> scores;
                        std::vector<std::size_t> which;
                        double m = -std::numeric_limits<double>::infinity();
                        for (std::size_t key = 0; key < positions.size(); ++key) {
                            if (positions[key] >= problem.kv_lengths[s] || positions[key] > q_position) continue;
                            double dot = 0;
                            for (int d = 0; d < dim; ++d) {
                                const double qd = q_as_given(qv[d], q_dtype);
                                dot += qd * keys[key * dim + static_cast<std::size_t>(d)];
                            }
                            scores.push_back(dot * scale);
                            which.push_back(key);
                            m = std::max(m, dot * scale);
                        }
                        if (scores.empty()) continue;
                        double sum = 0;
                        for (double sc : scores) sum += std::exp(sc - m);
                        for (std::size_t i = 0; i < scores.size(); ++i) {
                            const double w = std::exp(scores[i] - m) / sum;
                            for (int d = 0; d < dim; ++d) {
                                o[out * dim + static_cast<std::size_t>(d)] += w * values[which[i] * dim + static_cast<std::size_t>(d)];
                            }
                        }
                        lse[out] = m + std::log(sum);
                    }
                }
            }
        }
    }

    static double tolerance(inf_dtype dtype) { return dtype == INF_DTYPE_F32 ? 1e-4 : 2e-2; }

    static void expect_close(const std::vector<float>& got, const std::vector<double>& want, double tol,
                             const std::string& what) {
        ASSERT_EQ(got.size(), want.size()) << what;
        int reported = 0;
        for (std::size_t i = 0; i < got.size(); ++i) {
            const bool ok = std::isinf(want[i]) ? (std::isinf(got[i]) && got[i] < 0)
                                                : std::abs(got[i] - want[i]) <= tol * std::max(1.0, std::abs(want[i]));
            if (!ok && reported++ < 5) {
                ADD_FAILURE() << what << " [" << i << "]: got " << got[i] << ", want " << want[i];
            }
        }
    }

    void check(const Shape& shape, const std::vector<int>& lengths, const std::vector<int>& rows, std::uint32_t seed,
               inf_dtype q_dtype = INF_DTYPE_F32) {
        const std::string what = "dtype " + std::to_string(shape.dtype) + " group " + std::to_string(shape.group) +
                                 " dim " + std::to_string(shape.head_dim) + " page " + std::to_string(shape.page_size);
        int pages = 0;
        for (int length : lengths) pages += (length + shape.page_size - 1) / shape.page_size;
        Pool pool = make_pool(device_.get(), shape, std::max(pages, 1) + 8);
        ASSERT_NE(pool, nullptr);
        Problem problem = build(pool.get(), shape, lengths, rows, seed);
        std::vector<float> o, lse;
        run(device_.get(), pool.get(), problem, shape, q_dtype, o, lse);
        std::vector<double> o_ref, lse_ref;
        reference(pool.get(), problem, shape, q_dtype, o_ref, lse_ref);
        expect_close(o, o_ref, tolerance(shape.dtype), what + " o");
        expect_close(lse, lse_ref, tolerance(shape.dtype), what + " lse");
    }

    // Runs problem on pool through the tensor-core prefill kernel and through the SIMT kernel; checks
    // both against the float64 reference and against each other.
    void check_both_paths(inf_page_pool* pool, const Problem& problem, const Shape& shape, inf_dtype q_dtype,
                          const std::string& what) {
        std::vector<float> o_mma, lse_mma, o_simt, lse_simt;
        {
            const PrefillMode mode("mma");
            run(device_.get(), pool, problem, shape, q_dtype, o_mma, lse_mma);
        }
        {
            const PrefillMode mode("simt");
            run(device_.get(), pool, problem, shape, q_dtype, o_simt, lse_simt);
        }
        std::vector<double> o_ref, lse_ref;
        reference(pool, problem, shape, q_dtype, o_ref, lse_ref);
        const double tol = tolerance(shape.dtype);
        expect_close(o_mma, o_ref, tol, what + " mma o");
        expect_close(lse_mma, lse_ref, tol, what + " mma lse");
        expect_close(o_simt, o_ref, tol, what + " simt o");
        expect_close(lse_simt, lse_ref, tol, what + " simt lse");
        expect_close(o_mma, std::vector<double>(o_simt.begin(), o_simt.end()), tol, what + " mma vs simt o");
        expect_close(lse_mma, std::vector<double>(lse_simt.begin(), lse_simt.end()), tol, what + " mma vs simt lse");
    }

    void check_both_paths(const Shape& shape, const std::vector<int>& lengths, const std::vector<int>& rows,
                          std::uint32_t seed, inf_dtype q_dtype) {
        const std::string what = "dtype " + std::to_string(shape.dtype) + " q " + std::to_string(q_dtype) + " group " +
                                 std::to_string(shape.group) + " dim " + std::to_string(shape.head_dim) + " page " +
                                 std::to_string(shape.page_size);
        int pages = 0;
        for (int length : lengths) pages += (length + shape.page_size - 1) / shape.page_size;
        Pool pool = make_pool(device_.get(), shape, std::max(pages, 1) + 8);
        ASSERT_NE(pool, nullptr);
        const Problem problem = build(pool.get(), shape, lengths, rows, seed);
        check_both_paths(pool.get(), problem, shape, q_dtype, what);
    }

    Device device_;
    Device cpu_;
};

TEST_F(CudaAttention, DecodeMatchesReference) {
    std::uint32_t seed = 1;
    for (inf_dtype dtype : {INF_DTYPE_F32, INF_DTYPE_F16, INF_DTYPE_BF16}) {
        for (int group : {1, 4, 8}) {
            for (int dim : {64, 128}) {
                for (int page : {16, 64, 128}) {
                    Shape shape{dtype, 2, group, dim, page, 16};
                    // Ragged: one token, a partial last page, several pages (split-KV on long ones).
                    check(shape, {1, page * 2 + 5, page * 9 - 3}, {1, 1, 1}, seed++);
                }
            }
        }
    }
}

TEST_F(CudaAttention, LongDecodeSplitsAndMatches) {
    check(Shape{INF_DTYPE_BF16, 8, 4, 128, 64, 16}, {8191}, {1}, 7);
    check(Shape{INF_DTYPE_F32, 2, 8, 64, 16, 16}, {3000, 17}, {1, 1}, 8);
}

TEST_F(CudaAttention, PrefillMatchesReference) {
    std::uint32_t seed = 100;
    for (inf_dtype dtype : {INF_DTYPE_F32, INF_DTYPE_F16, INF_DTYPE_BF16}) {
        for (int group : {1, 4}) {
            for (int dim : {64, 128}) {
                Shape shape{dtype, 2, group, dim, 64, 16};
                // Whole prompt, a chunk after a prefix, and a decode row in the same batch.
                check(shape, {200, 300, 70}, {200, 37, 1}, seed++);
            }
        }
    }
}

// The tensor-core prefill kernel over its whole support: bf16/f16 pools, head_dim 64/128, GQA 1/4/8,
// pages of 16/64/128 tokens, q in f32 or the pool's dtype; per batch a whole prompt (not a multiple of
// the 64-row or 64-key tiles), a causal chunk at the end of a longer context, and a short chunk.
TEST_F(CudaAttention, PrefillPathsMatchReferenceAndEachOther) {
    std::uint32_t seed = 300;
    for (inf_dtype dtype : {INF_DTYPE_F16, INF_DTYPE_BF16}) {
        for (int dim : {64, 128}) {
            for (int group : {1, 4, 8}) {
                for (int page : {16, 64, 128}) {
                    const inf_dtype q_dtype = (seed & 1u) != 0 ? dtype : INF_DTYPE_F32;
                    const int prompt = page * 2 + 37;
                    check_both_paths(Shape{dtype, 2, group, dim, page, 16}, {prompt, 1100, 70}, {prompt, 45, 17},
                                     seed++, q_dtype);
                }
            }
        }
    }
}

// A causal chunk at the end of a long context: most key tiles fully visible, the last ones causal, and
// (in the automatic choice) few CTAs for a long key axis.
TEST_F(CudaAttention, PrefillChunkAtEndOfLongContextPaths) {
    check_both_paths(Shape{INF_DTYPE_BF16, 2, 4, 128, 64, 16}, {8000}, {200}, 81, INF_DTYPE_F32);
    check_both_paths(Shape{INF_DTYPE_F16, 1, 8, 64, 16, 16}, {5000, 300}, {130, 300}, 82, INF_DTYPE_F16);
}

// A sequence with nothing to attend to next to prompts: o = 0, lse = -inf for all its rows.
TEST_F(CudaAttention, PrefillEmptyListPaths) {
    check_both_paths(Shape{INF_DTYPE_BF16, 2, 4, 64, 16, 16}, {0, 90}, {20, 90}, 83, INF_DTYPE_F32);
}

// Per-head lists in prefill: head 0 reads {0, 3, 9} (a 64-key tile gathers from non-adjacent pages),
// head 1 reads {9, 2, 5, 6} (positions out of order).
TEST_F(CudaAttention, PrefillPerHeadListsPaths) {
    for (inf_dtype dtype : {INF_DTYPE_F16, INF_DTYPE_BF16}) {
        for (int dim : {64, 128}) {
            const Shape shape{dtype, 2, 4, dim, 16, 16};
            Pool pool = make_pool(device_.get(), shape, 64);
            Problem problem = build(pool.get(), shape, {16 * 10 - 4}, {40}, 91);
            problem.head_page_starts = {0, 3, 7};
            problem.head_page_indices = {0, 3, 9, 9, 2, 5, 6};
            check_both_paths(pool.get(), problem, shape, INF_DTYPE_F32, "per-head prefill dim " + std::to_string(dim));
        }
    }
}

// Explicit page_positions in prefill: a remote part (entries 3.. only, so keys start at 3 x 64) with its
// entries in reverse order, and one query placed before every key of the part (o = 0, lse = -inf).
TEST_F(CudaAttention, PrefillPagePositionsPaths) {
    for (int page : {16, 64}) {
        const Shape shape{INF_DTYPE_BF16, 2, 4, 128, page, 16};
        Pool pool = make_pool(device_.get(), shape, 64);
        const Problem whole = build(pool.get(), shape, {page * 7 + 11}, {100}, 95);
        Problem part = whole;
        part.page_ids.assign(whole.page_ids.rbegin(), whole.page_ids.rend() - 3);
        part.page_positions.assign(whole.page_positions.rbegin(), whole.page_positions.rend() - 3);
        part.page_starts = {0, static_cast<int32_t>(part.page_ids.size())};
        part.q_positions[0] = 1;
        check_both_paths(pool.get(), part, shape, INF_DTYPE_F32, "page positions page " + std::to_string(page));
    }
}

TEST_F(CudaAttention, QInPoolDtype) {
    check(Shape{INF_DTYPE_BF16, 2, 4, 128, 16, 16}, {100, 33}, {1, 9}, 21, INF_DTYPE_BF16);
}

TEST_F(CudaAttention, EmptyListGivesZeroAndMinusInfinity) {
    check(Shape{INF_DTYPE_BF16, 2, 4, 64, 16, 16}, {0, 40}, {1, 1}, 31);
}

TEST_F(CudaAttention, PerHeadListsMatchReference) {
    const Shape shape{INF_DTYPE_F16, 2, 4, 128, 16, 16};
    Pool pool = make_pool(device_.get(), shape, 64);
    Problem problem = build(pool.get(), shape, {16 * 10 - 4}, {1}, 41);
    // Head 0 reads entries {0, 3, 9} (sink, middle, newest), head 1 reads nothing.
    problem.head_page_starts = {0, 3, 3};
    problem.head_page_indices = {0, 3, 9};
    std::vector<float> o, lse;
    run(device_.get(), pool.get(), problem, shape, INF_DTYPE_F32, o, lse);
    std::vector<double> o_ref, lse_ref;
    reference(pool.get(), problem, shape, INF_DTYPE_F32, o_ref, lse_ref);
    expect_close(o, o_ref, tolerance(shape.dtype), "per-head o");
    expect_close(lse, lse_ref, tolerance(shape.dtype), "per-head lse");
}

TEST_F(CudaAttention, SplitThenMergeEqualsUnsplit) {
    const Shape shape{INF_DTYPE_BF16, 2, 4, 128, 64, 16};
    Pool pool = make_pool(device_.get(), shape, 64);
    Problem whole = build(pool.get(), shape, {64 * 7 + 11}, {1}, 51);
    // Part a: entries 0..2, part b: 3..7 (explicit positions keep the keys' positions).
    Problem a = whole, b = whole;
    a.page_ids.assign(whole.page_ids.begin(), whole.page_ids.begin() + 3);
    a.page_positions.assign(whole.page_positions.begin(), whole.page_positions.begin() + 3);
    a.page_starts = {0, 3};
    b.page_ids.assign(whole.page_ids.begin() + 3, whole.page_ids.end());
    b.page_positions.assign(whole.page_positions.begin() + 3, whole.page_positions.end());
    b.page_starts = {0, static_cast<int32_t>(b.page_ids.size())};
    std::vector<float> o, lse, oa, la, ob, lb;
    run(device_.get(), pool.get(), whole, shape, INF_DTYPE_F32, o, lse);
    run(device_.get(), pool.get(), a, shape, INF_DTYPE_F32, oa, la);
    run(device_.get(), pool.get(), b, shape, INF_DTYPE_F32, ob, lb);
    const int64_t rows = static_cast<int64_t>(lse.size());
    Buffer o0 = make_buffer(device_.get(), oa.size() * 4), l0 = make_buffer(device_.get(), la.size() * 4);
    Buffer o1 = make_buffer(device_.get(), ob.size() * 4), l1 = make_buffer(device_.get(), lb.size() * 4);
    ASSERT_OK(inf_buffer_write(o0.get(), 0, oa.data(), oa.size() * 4));
    ASSERT_OK(inf_buffer_write(l0.get(), 0, la.data(), la.size() * 4));
    ASSERT_OK(inf_buffer_write(o1.get(), 0, ob.data(), ob.size() * 4));
    ASSERT_OK(inf_buffer_write(l1.get(), 0, lb.data(), lb.size() * 4));
    const inf_buffer* o_parts[2] = {o0.get(), o1.get()};
    const inf_buffer* l_parts[2] = {l0.get(), l1.get()};
    // In place: the result lands in part 0's buffers.
    ASSERT_OK(inf_attention_merge(2, o_parts, l_parts, rows, shape.head_dim, o0.get(), l0.get()));
    std::vector<float> om(o.size()), lm(lse.size());
    ASSERT_OK(inf_buffer_read(o0.get(), 0, om.data(), om.size() * 4));
    ASSERT_OK(inf_buffer_read(l0.get(), 0, lm.data(), lm.size() * 4));
    expect_close(om, std::vector<double>(o.begin(), o.end()), 1e-5, "merged o");
    expect_close(lm, std::vector<double>(lse.begin(), lse.end()), 1e-5, "merged lse");
}

TEST_F(CudaAttention, MergeOfEmptyPartsIsEmpty) {
    const float minus_inf = -std::numeric_limits<float>::infinity();
    std::vector<float> o(2 * 64, 0.0f), l(2, minus_inf);
    Buffer o0 = make_buffer(device_.get(), o.size() * 4), l0 = make_buffer(device_.get(), 8);
    Buffer o1 = make_buffer(device_.get(), o.size() * 4), l1 = make_buffer(device_.get(), 8);
    for (inf_buffer* b : {o0.get(), o1.get()}) ASSERT_OK(inf_buffer_write(b, 0, o.data(), o.size() * 4));
    for (inf_buffer* b : {l0.get(), l1.get()}) ASSERT_OK(inf_buffer_write(b, 0, l.data(), 8));
    Buffer o_out = make_buffer(device_.get(), o.size() * 4), l_out = make_buffer(device_.get(), 8);
    ASSERT_OK(inf_buffer_fill(o_out.get(), 0, &kNaN, 4, o.size()));
    ASSERT_OK(inf_buffer_fill(l_out.get(), 0, &kNaN, 4, 2));
    const inf_buffer* o_parts[2] = {o0.get(), o1.get()};
    const inf_buffer* l_parts[2] = {l0.get(), l1.get()};
    ASSERT_OK(inf_attention_merge(2, o_parts, l_parts, 2, 64, o_out.get(), l_out.get()));
    std::vector<float> om(o.size()), lm(2);
    ASSERT_OK(inf_buffer_read(o_out.get(), 0, om.data(), om.size() * 4));
    ASSERT_OK(inf_buffer_read(l_out.get(), 0, lm.data(), 8));
    for (float x : om) EXPECT_EQ(x, 0.0f);
    for (float x : lm) EXPECT_EQ(x, minus_inf);
}

TEST_F(CudaAttention, SummariesAreMinMaxOfStoredKeys) {
    const Shape shape{INF_DTYPE_BF16, 2, 1, 64, 64, 16};
    Pool pool = make_pool(device_.get(), shape, 16);
    Problem problem = build(pool.get(), shape, {64 + 40}, {1}, 61);
    const int logical = shape.page_size / shape.logical_page_size;
    std::vector<float> kp(static_cast<std::size_t>(shape.kv_heads * shape.page_size * shape.head_dim)), vp(kp.size());
    std::vector<float> summary(static_cast<std::size_t>(shape.kv_heads * logical * 2 * shape.head_dim));
    for (int e = 0; e < 2; ++e) {
        const int page = problem.page_ids[static_cast<std::size_t>(e)];
        const int filled = e == 0 ? 64 : 40;
        ASSERT_OK(inf_page_pool_read_page(pool.get(), 0, page, kp.data(), vp.data()));
        ASSERT_OK(inf_page_pool_read_summary(pool.get(), 0, page, summary.data()));
        for (int h = 0; h < shape.kv_heads; ++h) {
            for (int lp = 0; lp * shape.logical_page_size < filled; ++lp) {
                for (int d = 0; d < shape.head_dim; ++d) {
                    float lo = INFINITY, hi = -INFINITY;
                    for (int t = lp * 16; t < std::min(filled, lp * 16 + 16); ++t) {
                        const float x = kp[(static_cast<std::size_t>(h) * shape.page_size + t) * shape.head_dim + d];
                        lo = std::min(lo, x);
                        hi = std::max(hi, x);
                    }
                    const std::size_t at = ((static_cast<std::size_t>(h) * logical + lp) * 2) * shape.head_dim + d;
                    EXPECT_EQ(summary[at], lo);
                    EXPECT_EQ(summary[at + shape.head_dim], hi);
                }
            }
        }
    }
}

TEST_F(CudaAttention, PagesCopiedFromCpuPoolGiveTheSameAttention) {
    const Shape shape{INF_DTYPE_BF16, 2, 4, 128, 16, 16};
    Pool cpu_pool = make_pool(cpu_.get(), shape, 32);
    Pool gpu_pool = make_pool(device_.get(), shape, 32);
    Problem problem = build(cpu_pool.get(), shape, {16 * 6 + 3, 50}, {1, 4}, 71);
    std::vector<int32_t> all(32);
    std::iota(all.begin(), all.end(), 0);
    ASSERT_OK(inf_page_pool_copy_pages(gpu_pool.get(), all.data(), cpu_pool.get(), all.data(), 32));
    std::vector<float> o_cpu, l_cpu, o_gpu, l_gpu;
    run(cpu_.get(), cpu_pool.get(), problem, shape, INF_DTYPE_F32, o_cpu, l_cpu);
    run(device_.get(), gpu_pool.get(), problem, shape, INF_DTYPE_F32, o_gpu, l_gpu);
    // Same stored values on both sides: only the float32 summation order differs.
    expect_close(o_gpu, std::vector<double>(o_cpu.begin(), o_cpu.end()), 1e-4, "cpu vs cuda o");
    expect_close(l_gpu, std::vector<double>(l_cpu.begin(), l_cpu.end()), 1e-4, "cpu vs cuda lse");
}

}  // namespace
