// inf_attention_run / inf_attention_merge through the C ABI: small end-to-end cases against a float64
// computation written here (GQA, partial last page, explicit positions, sparse heads, merged parts,
// copied pages), and every validation error with the argument it names. The numerical coverage of
// the kernels against the float64 reference lives in the kernel tests.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <thread>
#include <vector>

#include "test_util.h"

using inf_test::Buffer;
using inf_test::Device;
using inf_test::make_buffer;
using inf_test::make_device;
using inf_test::make_pool;
using inf_test::Pool;
using inf_test::pool_config;

namespace {

constexpr int32_t kKvHeads = 2;
constexpr int32_t kQHeads = 8;  // GQA 4
constexpr int32_t kDim = 16;
constexpr int32_t kPageSize = 16;
constexpr int32_t kLayer = 1;
constexpr float kMaxMagnitude = 1.5F;  // of the random keys, values and queries

inf_page_pool_config test_config(inf_dtype dtype = INF_DTYPE_F32) {
    return pool_config(dtype, /*layers=*/2, kKvHeads, kDim, kPageSize, /*pages=*/8, /*logical_page_size=*/4);
}

std::vector<float> random_floats(std::size_t count, std::uint32_t seed) {
    return inf_test::random_floats(count, seed, kMaxMagnitude);
}

// The batch of the end-to-end tests, with its arrays.
struct Batch {
    std::vector<int32_t> q_starts{0, 3, 4, 5};
    std::vector<int32_t> q_positions{34, 35, 36, 19, 0};
    std::vector<int32_t> kv_lengths{37, 20, 0};  // sequence 0 ends in a partial page; 2 sees nothing
    std::vector<int32_t> page_starts{0, 3, 5, 5};
    std::vector<int32_t> page_ids{5, 1, 6, 2, 7};
    std::vector<int32_t> page_positions;     // empty: null
    std::vector<int32_t> head_page_starts;   // empty: null
    std::vector<int32_t> head_page_indices;  // empty: null
    float scale = 0.0F;
    inf_dtype q_dtype = INF_DTYPE_F32;

    int32_t sequences() const { return static_cast<int32_t>(kv_lengths.size()); }
    int32_t total_q() const { return q_starts.back(); }

    inf_attention_batch view() const {
        inf_attention_batch b{};
        b.size = sizeof b;
        b.sequences = sequences();
        b.q_heads = kQHeads;
        b.q_dtype = q_dtype;
        b.scale = scale;
        b.q_starts = q_starts.data();
        b.q_positions = q_positions.data();
        b.kv_lengths = kv_lengths.data();
        b.page_starts = page_starts.data();
        b.page_ids = page_ids.data();
        b.page_positions = page_positions.empty() ? nullptr : page_positions.data();
        b.head_page_starts = head_page_starts.empty() ? nullptr : head_page_starts.data();
        b.head_page_indices = head_page_indices.empty() ? nullptr : head_page_indices.data();
        return b;
    }
};

// Random queries for every query row of the batch (float32, [total_q, kQHeads, kDim]).
std::vector<float> random_q(const Batch& batch, std::uint32_t seed) {
    return random_floats(static_cast<std::size_t>(batch.total_q()) * kQHeads * kDim, seed);
}

// Writes keys and values for positions 0 .. kv_lengths[s]-1 of every sequence (default positions).
void fill_pool(inf_page_pool* pool, const Batch& batch, std::uint32_t seed) {
    const std::size_t row = kKvHeads * kDim;
    for (int32_t s = 0; s < batch.sequences(); ++s) {
        const int32_t length = batch.kv_lengths[static_cast<std::size_t>(s)];
        std::vector<int32_t> pages;
        std::vector<int32_t> slots;
        for (int32_t p = 0; p < length; ++p) {
            pages.push_back(batch.page_ids[static_cast<std::size_t>(batch.page_starts[static_cast<std::size_t>(s)] + p / kPageSize)]);
            slots.push_back(p % kPageSize);
        }
        const std::vector<float> k = random_floats(pages.size() * row, seed + 2 * static_cast<std::uint32_t>(s));
        const std::vector<float> v = random_floats(pages.size() * row, seed + 2 * static_cast<std::uint32_t>(s) + 1);
        ASSERT_OK(inf_page_pool_append(pool, kLayer, length, pages.data(), slots.data(), k.data(), v.data()));
    }
}

struct Result {
    std::vector<float> o;
    std::vector<float> lse;
};

// float64 MicroAttention over the pool's stored keys and values (read back as float32).
Result reference(const inf_page_pool* pool, const Batch& batch, const std::vector<float>& q) {
    const int32_t group = kQHeads / kKvHeads;
    const std::size_t page_floats = kKvHeads * kPageSize * kDim;
    const std::size_t total_q = static_cast<std::size_t>(batch.total_q());
    Result result{std::vector<float>(total_q * kQHeads * kDim), std::vector<float>(total_q * kQHeads)};
    const double scale = batch.scale == 0.0F ? 1.0 / std::sqrt(static_cast<double>(kDim)) : static_cast<double>(batch.scale);
    for (int32_t s = 0; s < batch.sequences(); ++s) {
        const auto su = static_cast<std::size_t>(s);
        for (int32_t i = batch.q_starts[su]; i < batch.q_starts[su + 1]; ++i) {
            const int32_t position = batch.q_positions[static_cast<std::size_t>(i)];
            for (int32_t g = 0; g < kQHeads; ++g) {
                const int32_t h = g / group;
                std::vector<int32_t> entries;
                if (batch.head_page_starts.empty()) {
                    for (int32_t j = batch.page_starts[su]; j < batch.page_starts[su + 1]; ++j) entries.push_back(j);
                } else {
                    const std::size_t list = su * kKvHeads + static_cast<std::size_t>(h);
                    for (int32_t x = batch.head_page_starts[list]; x < batch.head_page_starts[list + 1]; ++x) {
                        entries.push_back(batch.page_starts[su] + batch.head_page_indices[static_cast<std::size_t>(x)]);
                    }
                }
                std::vector<double> scores;
                std::vector<std::vector<double>> values;
                const float* qv = q.data() + (static_cast<std::size_t>(i) * kQHeads + static_cast<std::size_t>(g)) * kDim;
                for (int32_t j : entries) {
                    const auto ju = static_cast<std::size_t>(j);
                    const int32_t first = batch.page_positions.empty()
                                              ? (j - batch.page_starts[su]) * kPageSize
                                              : batch.page_positions[ju];
                    std::vector<float> k(page_floats);
                    std::vector<float> v(page_floats);
                    EXPECT_OK(inf_page_pool_read_page(pool, kLayer, batch.page_ids[ju], k.data(), v.data()));
                    for (int32_t t = 0; t < kPageSize; ++t) {
                        const int32_t key = first + t;
                        if (key >= batch.kv_lengths[su] || key > position) continue;
                        const std::size_t base = (static_cast<std::size_t>(h) * kPageSize + static_cast<std::size_t>(t)) * kDim;
                        double dot = 0.0;
                        std::vector<double> value(kDim);
                        for (int32_t d = 0; d < kDim; ++d) {
                            dot += static_cast<double>(qv[d]) * static_cast<double>(k[base + static_cast<std::size_t>(d)]);
                            value[static_cast<std::size_t>(d)] = v[base + static_cast<std::size_t>(d)];
                        }
                        scores.push_back(dot * scale);
                        values.push_back(value);
                    }
                }
                const std::size_t out = static_cast<std::size_t>(i) * kQHeads + static_cast<std::size_t>(g);
                if (scores.empty()) {
                    result.lse[out] = -INFINITY;
                    continue;  // o stays 0
                }
                const double top = *std::max_element(scores.begin(), scores.end());
                double sum = 0.0;
                std::vector<double> acc(kDim, 0.0);
                for (std::size_t n = 0; n < scores.size(); ++n) {
                    const double w = std::exp(scores[n] - top);
                    sum += w;
                    for (std::size_t d = 0; d < kDim; ++d) acc[d] += w * values[n][d];
                }
                for (std::size_t d = 0; d < kDim; ++d) result.o[out * kDim + d] = static_cast<float>(acc[d] / sum);
                result.lse[out] = static_cast<float>(top + std::log(sum));
            }
        }
    }
    return result;
}

struct Buffers {
    Buffer q;
    Buffer o;
    Buffer lse;
};

Buffers make_buffers(inf_device* device, const Batch& batch, const std::vector<float>& q) {
    const std::size_t rows = static_cast<std::size_t>(batch.total_q()) * kQHeads;
    Buffers buffers{make_buffer(device, q.size() * 4), make_buffer(device, rows * kDim * 4), make_buffer(device, rows * 4)};
    EXPECT_OK(inf_buffer_write(buffers.q.get(), 0, q.data(), q.size() * 4));
    return buffers;
}

// Runs attention with NaN-poisoned outputs and reads them back.
Result run(inf_page_pool* pool, const Batch& batch, const Buffers& buffers) {
    const std::size_t rows = static_cast<std::size_t>(batch.total_q()) * kQHeads;
    const float nan = std::numeric_limits<float>::quiet_NaN();
    EXPECT_OK(inf_buffer_fill(buffers.o.get(), 0, &nan, 4, rows * kDim));
    EXPECT_OK(inf_buffer_fill(buffers.lse.get(), 0, &nan, 4, rows));
    const inf_attention_batch view = batch.view();
    EXPECT_OK(inf_attention_run(pool, kLayer, &view, buffers.q.get(), buffers.o.get(), buffers.lse.get()));
    Result result{std::vector<float>(rows * kDim), std::vector<float>(rows)};
    EXPECT_OK(inf_buffer_read(buffers.o.get(), 0, result.o.data(), rows * kDim * 4));
    EXPECT_OK(inf_buffer_read(buffers.lse.get(), 0, result.lse.data(), rows * 4));
    return result;
}

void expect_close(const Result& actual, const Result& expected, double tolerance) {
    ASSERT_EQ(actual.o.size(), expected.o.size());
    for (std::size_t i = 0; i < expected.o.size(); ++i) {
        ASSERT_NEAR(actual.o[i], expected.o[i], tolerance * (1.0 + std::fabs(expected.o[i]))) << "o[" << i << "]";
    }
    for (std::size_t i = 0; i < expected.lse.size(); ++i) {
        if (std::isinf(expected.lse[i])) {
            ASSERT_EQ(actual.lse[i], expected.lse[i]) << "lse[" << i << "]";
        } else {
            ASSERT_NEAR(actual.lse[i], expected.lse[i], tolerance * (1.0 + std::fabs(expected.lse[i]))) << "lse[" << i << "]";
        }
    }
}

}  // namespace

TEST(AttentionRun, GqaPartialLastPageMatchesFloat64) {
    Device device = make_device();
    Pool pool = make_pool(device.get(), test_config());
    Batch batch;
    fill_pool(pool.get(), batch, 100);
    const std::vector<float> q = random_q(batch, 5);
    const Buffers buffers = make_buffers(device.get(), batch, q);
    const Result expected = reference(pool.get(), batch, q);
    const Result actual = run(pool.get(), batch, buffers);
    expect_close(actual, expected, 1e-5);
    // Sequence 2 sees no key: o = 0, lse = -inf.
    for (std::size_t i = 4 * kQHeads; i < 5 * kQHeads; ++i) {
        EXPECT_EQ(actual.lse[i], -INFINITY);
        for (std::size_t d = 0; d < kDim; ++d) EXPECT_EQ(actual.o[i * kDim + d], 0.0F);
    }
    // Run again (scratch reused): same result, bit for bit.
    const Result again = run(pool.get(), batch, buffers);
    EXPECT_EQ(again.o, actual.o);
    EXPECT_EQ(again.lse, actual.lse);
}

TEST(AttentionRun, ExplicitPositionsSparseHeadsAndScale) {
    Device device = make_device();
    Pool pool = make_pool(device.get(), test_config());
    Batch batch;
    fill_pool(pool.get(), batch, 200);
    batch.scale = 0.3F;
    batch.page_positions = {0, 16, 32, 0, 16};
    // Sequence 0: head 0 reads entries 0 and 2, head 1 only entry 1; sequence 1: head 0 all, head 1 the last;
    // sequence 2: none.
    batch.head_page_starts = {0, 2, 3, 5, 6, 6, 6};
    batch.head_page_indices = {0, 2, 1, 0, 1, 1};
    const std::vector<float> q = random_q(batch, 6);
    const Buffers buffers = make_buffers(device.get(), batch, q);
    expect_close(run(pool.get(), batch, buffers), reference(pool.get(), batch, q), 1e-5);
}

TEST(AttentionRun, Bf16PoolWithBf16Queries) {
    Device device = make_device();
    Pool pool = make_pool(device.get(), test_config(INF_DTYPE_BF16));
    Batch batch;
    batch.q_dtype = INF_DTYPE_BF16;
    fill_pool(pool.get(), batch, 300);
    std::vector<float> q = random_q(batch, 7);
    std::vector<uint16_t> q16(q.size());
    for (std::size_t i = 0; i < q.size(); ++i) {
        uint32_t bits = 0;
        std::memcpy(&bits, &q[i], 4);
        bits &= 0xFFFF0000U;  // exactly representable in bf16
        std::memcpy(&q[i], &bits, 4);
        q16[i] = static_cast<uint16_t>(bits >> 16);
    }
    const std::size_t rows = static_cast<std::size_t>(batch.total_q()) * kQHeads;
    Buffers buffers{make_buffer(device.get(), q16.size() * 2), make_buffer(device.get(), rows * kDim * 4),
                    make_buffer(device.get(), rows * 4)};
    ASSERT_OK(inf_buffer_write(buffers.q.get(), 0, q16.data(), q16.size() * 2));
    // The reference reads the stored (rounded) keys and values, so only float32 arithmetic differs.
    expect_close(run(pool.get(), batch, buffers), reference(pool.get(), batch, q), 1e-4);
}

TEST(AttentionRun, CopiedPagesGiveIdenticalOutput) {
    Device device = make_device();
    Pool src = make_pool(device.get(), test_config());
    Pool dst = make_pool(device.get(), test_config());
    Batch batch;
    fill_pool(src.get(), batch, 400);
    const std::vector<float> q = random_q(batch, 8);
    const Buffers buffers = make_buffers(device.get(), batch, q);
    const Result original = run(src.get(), batch, buffers);
    // Migrate every page to other ids in the second pool and remap the table.
    const std::vector<int32_t> moved{0, 3, 4, 5, 6};
    ASSERT_OK(inf_page_pool_copy_pages(dst.get(), moved.data(), src.get(), batch.page_ids.data(), 5));
    batch.page_ids = moved;
    const Result copied = run(dst.get(), batch, buffers);
    EXPECT_EQ(copied.o, original.o);
    EXPECT_EQ(copied.lse, original.lse);
}

TEST(AttentionRun, MergedPartsEqualTheWhole) {
    Device device = make_device();
    Pool pool = make_pool(device.get(), test_config());
    Batch whole;
    whole.q_starts = {0, 3};
    whole.q_positions = {34, 35, 36};
    whole.kv_lengths = {37};
    whole.page_starts = {0, 3};
    whole.page_ids = {5, 1, 6};
    fill_pool(pool.get(), whole, 500);
    const std::vector<float> q = random_q(whole, 9);
    const Buffers full = make_buffers(device.get(), whole, q);
    const Result expected = run(pool.get(), whole, full);
    // Two parts, as two instances would hold them: pages 0-1 and page 2 of the sequence.
    Batch first = whole;
    first.page_starts = {0, 2};
    first.page_ids = {5, 1};
    first.page_positions = {0, 16};
    Batch second = whole;
    second.page_starts = {0, 1};
    second.page_ids = {6};
    second.page_positions = {32};
    const Buffers a = make_buffers(device.get(), first, q);
    const Buffers b = make_buffers(device.get(), second, q);
    run(pool.get(), first, a);
    run(pool.get(), second, b);
    const inf_buffer* o_parts[] = {a.o.get(), b.o.get()};
    const inf_buffer* lse_parts[] = {a.lse.get(), b.lse.get()};
    const int64_t rows = 3 * kQHeads;
    // Into part 0's buffers (allowed aliasing).
    ASSERT_OK(inf_attention_merge(2, o_parts, lse_parts, rows, kDim, a.o.get(), a.lse.get()));
    Result merged{std::vector<float>(static_cast<std::size_t>(rows) * kDim), std::vector<float>(static_cast<std::size_t>(rows))};
    ASSERT_OK(inf_buffer_read(a.o.get(), 0, merged.o.data(), merged.o.size() * 4));
    ASSERT_OK(inf_buffer_read(a.lse.get(), 0, merged.lse.data(), merged.lse.size() * 4));
    expect_close(merged, expected, 1e-5);
}

TEST(AttentionRun, ConcurrentCallsOnOnePool) {
    // Each call leases its own scratch set from the pool: concurrent calls neither wait for nor
    // disturb each other, and all of them get the single-threaded result.
    Device device = make_device();
    Pool pool = make_pool(device.get(), test_config());
    Batch batch;
    fill_pool(pool.get(), batch, 600);
    const std::vector<float> q = random_q(batch, 11);
    const Buffers single = make_buffers(device.get(), batch, q);
    const Result expected = run(pool.get(), batch, single);
    std::vector<std::thread> threads;
    std::vector<int> mismatches(4, 0);
    for (std::size_t t = 0; t < mismatches.size(); ++t) {
        threads.emplace_back([&, t] {
            const Buffers own = make_buffers(device.get(), batch, q);
            for (int i = 0; i < 20; ++i) {
                const Result result = run(pool.get(), batch, own);
                mismatches[t] += result.o != expected.o || result.lse != expected.lse ? 1 : 0;
            }
        });
    }
    for (std::thread& thread : threads) thread.join();
    for (int count : mismatches) EXPECT_EQ(count, 0);
}

TEST(AttentionRun, EmptyBatches) {
    Device device = make_device();
    Pool pool = make_pool(device.get(), test_config());
    Buffer q = make_buffer(device.get(), 4);
    Buffer o = make_buffer(device.get(), 4);
    Buffer lse = make_buffer(device.get(), 4);
    inf_attention_batch b{};
    b.size = sizeof b;
    b.q_heads = kQHeads;
    EXPECT_OK(inf_attention_run(pool.get(), 0, &b, q.get(), o.get(), lse.get()));  // no sequence
    const int32_t zeros[] = {0, 0};
    b.sequences = 1;
    b.q_starts = zeros;
    b.kv_lengths = zeros;
    b.page_starts = zeros;
    EXPECT_OK(inf_attention_run(pool.get(), 0, &b, q.get(), o.get(), lse.get()));  // no query row, no page
}

TEST(AttentionRun, Errors) {
    Device device = make_device();
    Pool pool = make_pool(device.get(), test_config());
    Batch batch;
    const std::vector<float> q = random_q(batch, 10);
    const Buffers buffers = make_buffers(device.get(), batch, q);
    inf_buffer* qb = buffers.q.get();
    inf_buffer* ob = buffers.o.get();
    inf_buffer* lb = buffers.lse.get();
    const inf_attention_batch good = batch.view();
    EXPECT_OK(inf_attention_run(pool.get(), kLayer, &good, qb, ob, lb));

    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_attention_run: pool is null", inf_attention_run(nullptr, 0, &good, qb, ob, lb));
    EXPECT_ERROR(INF_STATUS_INVALID_HANDLE, "inf_attention_run: pool (",
                 inf_attention_run(reinterpret_cast<inf_page_pool*>(device.get()), 0, &good, qb, ob, lb));
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "inf_attention_run: layer (2) is out of range: the pool has 2 layers",
                 inf_attention_run(pool.get(), 2, &good, qb, ob, lb));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_attention_run: batch is null", inf_attention_run(pool.get(), 0, nullptr, qb, ob, lb));
    inf_attention_batch small = good;
    small.size = 12;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "inf_attention_run: batch->size (12) is smaller than sizeof(inf_attention_batch)",
                 inf_attention_run(pool.get(), 0, &small, qb, ob, lb));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_attention_run: q is null", inf_attention_run(pool.get(), 0, &good, nullptr, ob, lb));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_attention_run: o is null", inf_attention_run(pool.get(), 0, &good, qb, nullptr, lb));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_attention_run: lse is null", inf_attention_run(pool.get(), 0, &good, qb, ob, nullptr));
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "inf_attention_run: o and q are the same buffer",
                 inf_attention_run(pool.get(), 0, &good, qb, qb, lb));
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "inf_attention_run: lse and o are the same buffer",
                 inf_attention_run(pool.get(), 0, &good, qb, ob, ob));

    // Each case edits a fresh copy of the batch arrays, then the struct built over them.
    using ArrayEdit = void (*)(Batch&);
    using FieldEdit = void (*)(inf_attention_batch&);
    struct Case {
        ArrayEdit arrays;
        FieldEdit fields;
        inf_status status;
        const char* message;
    };
    const ArrayEdit same = [](Batch&) {};
    const FieldEdit keep = [](inf_attention_batch&) {};
    const Case cases[] = {
        {same, [](inf_attention_batch& b) { b.sequences = -1; }, INF_STATUS_INVALID_ARGUMENT,
         "inf_attention_run: batch->sequences (-1) must be >= 0"},
        {same, [](inf_attention_batch& b) { b.q_heads = 0; }, INF_STATUS_INVALID_ARGUMENT,
         "batch->q_heads (0) must be a positive multiple of the pool's kv_heads (2)"},
        {same, [](inf_attention_batch& b) { b.q_heads = 7; }, INF_STATUS_INVALID_ARGUMENT,
         "batch->q_heads (7) must be a positive multiple of the pool's kv_heads (2)"},
        {same, [](inf_attention_batch& b) { b.q_dtype = INF_DTYPE_BF16; }, INF_STATUS_INVALID_ARGUMENT,
         "batch->q_dtype (2) must be INF_DTYPE_F32 (0) or the pool's dtype (0, f32)"},
        {same, [](inf_attention_batch& b) { const int32_t bad = 9; std::memcpy(&b.q_dtype, &bad, 4); },
         INF_STATUS_INVALID_ARGUMENT, "batch->q_dtype (9) must be"},
        {same, [](inf_attention_batch& b) { b.scale = -1.0F; }, INF_STATUS_INVALID_ARGUMENT,
         "batch->scale (-1) must be finite and >= 0"},
        {same, [](inf_attention_batch& b) { b.scale = std::numeric_limits<float>::quiet_NaN(); },
         INF_STATUS_INVALID_ARGUMENT, "batch->scale (nan) must be finite"},
        {same, [](inf_attention_batch& b) { b.scale = INFINITY; }, INF_STATUS_INVALID_ARGUMENT,
         "batch->scale (inf) must be finite"},
        {same, [](inf_attention_batch& b) { b.q_starts = nullptr; }, INF_STATUS_NULL_POINTER, "batch->q_starts is null"},
        {[](Batch& b) { b.q_starts = {1, 3, 4, 5}; }, keep, INF_STATUS_INVALID_ARGUMENT, "batch->q_starts[0] (1) must be 0"},
        {[](Batch& b) { b.q_starts = {0, 3, 2, 5}; }, keep, INF_STATUS_INVALID_ARGUMENT,
         "batch->q_starts[2] (2) is less than batch->q_starts[1] (3): q_starts must be non-decreasing"},
        {same, [](inf_attention_batch& b) { b.q_positions = nullptr; }, INF_STATUS_NULL_POINTER, "batch->q_positions is null"},
        {[](Batch& b) { b.q_positions[3] = -1; }, keep, INF_STATUS_INVALID_ARGUMENT, "batch->q_positions[3] (-1) must be >= 0"},
        {same, [](inf_attention_batch& b) { b.kv_lengths = nullptr; }, INF_STATUS_NULL_POINTER, "batch->kv_lengths is null"},
        {[](Batch& b) { b.kv_lengths[1] = -5; }, keep, INF_STATUS_INVALID_ARGUMENT, "batch->kv_lengths[1] (-5) must be >= 0"},
        {same, [](inf_attention_batch& b) { b.page_starts = nullptr; }, INF_STATUS_NULL_POINTER, "batch->page_starts is null"},
        {[](Batch& b) { b.page_starts = {0, 3, 2, 5}; }, keep, INF_STATUS_INVALID_ARGUMENT,
         "batch->page_starts[2] (2) is less than batch->page_starts[1] (3)"},
        {[](Batch& b) { b.page_starts[0] = -1; }, keep, INF_STATUS_INVALID_ARGUMENT, "batch->page_starts[0] (-1) must be 0"},
        {same, [](inf_attention_batch& b) { b.page_ids = nullptr; }, INF_STATUS_NULL_POINTER, "batch->page_ids is null"},
        {[](Batch& b) { b.page_ids[4] = 8; }, keep, INF_STATUS_OUT_OF_RANGE,
         "batch->page_ids[4] (8) is out of range: the pool has 8 pages"},
        {[](Batch& b) { b.page_ids[0] = -1; }, keep, INF_STATUS_OUT_OF_RANGE, "batch->page_ids[0] (-1) is out of range"},
        {[](Batch& b) { b.page_positions = {0, 16, -16, 0, 16}; }, keep, INF_STATUS_OUT_OF_RANGE,
         "batch->page_positions[2] (-16) must be from 0 to"},
        {[](Batch& b) { b.page_positions = {0, 16, std::numeric_limits<int32_t>::max() - 4, 0, 16}; }, keep,
         INF_STATUS_OUT_OF_RANGE, "batch->page_positions[2] (2147483643) must be from 0 to 2147483632"},
        {[](Batch& b) { b.kv_lengths[1] = 33; }, keep, INF_STATUS_OUT_OF_RANGE,
         "batch->kv_lengths[1] (33) exceeds the 32 keys of the 2 entries of sequence 1"},
        {[](Batch& b) { b.head_page_starts = {0, 1, 2, 3, 4, 5, 4}; b.head_page_indices = {0, 1, 0, 1, 0}; }, keep,
         INF_STATUS_INVALID_ARGUMENT, "batch->head_page_starts[6] (4) is less than batch->head_page_starts[5] (5)"},
        {[](Batch& b) { b.head_page_starts = {1, 1, 2, 3, 4, 4, 4}; b.head_page_indices = {0, 1, 0, 1}; }, keep,
         INF_STATUS_INVALID_ARGUMENT, "batch->head_page_starts[0] (1) must be 0"},
        {[](Batch& b) { b.head_page_starts = {0, 1, 2, 3, 4, 4, 4}; b.head_page_indices = {0, 1, 0, 2}; }, keep,
         INF_STATUS_OUT_OF_RANGE, "batch->head_page_indices[3] (2) is out of range: sequence 1 has 2 entries"},
        {[](Batch& b) { b.head_page_starts = {0, 1, 2, 3, 4, 4, 4}; b.head_page_indices = {-1, 1, 0, 1}; }, keep,
         INF_STATUS_OUT_OF_RANGE, "batch->head_page_indices[0] (-1) is out of range: sequence 0 has 3 entries"},
        {[](Batch& b) { b.head_page_starts = {0, 1, 2, 3, 4, 4, 5}; b.head_page_indices = {0, 1, 0, 1, 0}; }, keep,
         INF_STATUS_OUT_OF_RANGE, "batch->head_page_indices[4] (0) is out of range: sequence 2 has 0 entries"},
        {[](Batch& b) { b.head_page_starts = {0, 1, 2, 3, 4, 4, 4}; b.head_page_indices = {0}; }, [](inf_attention_batch& b) {
             b.head_page_indices = nullptr; }, INF_STATUS_NULL_POINTER, "batch->head_page_indices is null"},
        {[](Batch& b) { b.head_page_indices = {0}; }, keep, INF_STATUS_INVALID_ARGUMENT,
         "batch->head_page_indices is given but batch->head_page_starts is null"},
        {[](Batch& b) { b.q_starts = {0, 3, 4, 6}; b.q_positions.push_back(1); }, keep, INF_STATUS_OUT_OF_RANGE,
         "q holds 2560 bytes but needs 3072 (total_q * q_heads * head_dim * sizeof(q_dtype))"},
    };
    for (const Case& c : cases) {
        Batch edited = batch;
        c.arrays(edited);
        inf_attention_batch view = edited.view();
        c.fields(view);
        EXPECT_ERROR(c.status, c.message, inf_attention_run(pool.get(), kLayer, &view, qb, ob, lb));
    }
}

TEST(AttentionRun, BufferSizeErrors) {
    Device device = make_device();
    Pool pool = make_pool(device.get(), test_config());
    Batch batch;
    const inf_attention_batch view = batch.view();
    const std::size_t rows = static_cast<std::size_t>(batch.total_q()) * kQHeads;  // 40
    Buffer q = make_buffer(device.get(), rows * kDim * 4);
    Buffer o = make_buffer(device.get(), rows * kDim * 4);
    Buffer lse = make_buffer(device.get(), rows * 4);
    Buffer short_o = make_buffer(device.get(), rows * kDim * 4 - 1);
    Buffer short_lse = make_buffer(device.get(), rows * 4 - 4);
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "inf_attention_run: q holds 2559 bytes but needs 2560",
                 inf_attention_run(pool.get(), 0, &view, short_o.get(), o.get(), lse.get()));
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE,
                 "inf_attention_run: o holds 2559 bytes but needs 2560 (total_q * q_heads * head_dim * 4)",
                 inf_attention_run(pool.get(), 0, &view, q.get(), short_o.get(), lse.get()));
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "inf_attention_run: lse holds 156 bytes but needs 160 (total_q * q_heads * 4)",
                 inf_attention_run(pool.get(), 0, &view, q.get(), o.get(), short_lse.get()));
    // An f16 q of the same rows needs half the bytes, but the pool is f32: q_dtype must match it.
    inf_page_pool_config config = test_config(INF_DTYPE_F16);
    Pool half = make_pool(device.get(), config);
    inf_attention_batch half_view = view;
    half_view.q_dtype = INF_DTYPE_F16;
    Buffer half_q = make_buffer(device.get(), rows * kDim * 2);
    EXPECT_OK(inf_attention_run(half.get(), 0, &half_view, half_q.get(), o.get(), lse.get()));
    Buffer short_half_q = make_buffer(device.get(), rows * kDim * 2 - 2);
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "q holds 1278 bytes but needs 1280",
                 inf_attention_run(half.get(), 0, &half_view, short_half_q.get(), o.get(), lse.get()));
}

TEST(AttentionRun, DeviceMismatchOnARealGpu) {
    int32_t gpus = 0;
    ASSERT_OK(inf_device_count(INF_DEVICE_KIND_CUDA, &gpus));
    if (gpus == 0) {
        GTEST_SKIP() << "no CUDA device";
    }
    Device cpu = make_device();
    Device gpu = make_device(INF_DEVICE_KIND_CUDA, 0);
    Pool pool = make_pool(cpu.get(), test_config());
    Batch batch;
    const inf_attention_batch view = batch.view();
    const std::size_t rows = static_cast<std::size_t>(batch.total_q()) * kQHeads;
    Buffer q = make_buffer(cpu.get(), rows * kDim * 4);
    Buffer o = make_buffer(cpu.get(), rows * kDim * 4);
    Buffer lse = make_buffer(cpu.get(), rows * 4);
    Buffer far = make_buffer(gpu.get(), rows * kDim * 4);
    EXPECT_ERROR(INF_STATUS_DEVICE_MISMATCH, "inf_attention_run: q lives on cuda:0 but the pool on cpu:0",
                 inf_attention_run(pool.get(), 0, &view, far.get(), o.get(), lse.get()));
    EXPECT_ERROR(INF_STATUS_DEVICE_MISMATCH, "inf_attention_run: o lives on cuda:0 but the pool on cpu:0",
                 inf_attention_run(pool.get(), 0, &view, q.get(), far.get(), lse.get()));
    EXPECT_ERROR(INF_STATUS_DEVICE_MISMATCH, "inf_attention_run: lse lives on cuda:0 but the pool on cpu:0",
                 inf_attention_run(pool.get(), 0, &view, q.get(), o.get(), far.get()));
    const inf_buffer* o_parts[] = {o.get(), far.get()};
    const inf_buffer* lse_parts[] = {lse.get(), lse.get()};
    EXPECT_ERROR(INF_STATUS_DEVICE_MISMATCH, "inf_attention_merge: o_parts[1] lives on cuda:0 but o_out on cpu:0",
                 inf_attention_merge(2, o_parts, lse_parts, 1, kDim, o.get(), lse.get()));
}

TEST(AttentionMerge, Errors) {
    Device device = make_device();
    const int64_t rows = 6;
    Buffer o0 = make_buffer(device.get(), rows * kDim * 4);
    Buffer o1 = make_buffer(device.get(), rows * kDim * 4);
    Buffer l0 = make_buffer(device.get(), rows * 4);
    Buffer l1 = make_buffer(device.get(), rows * 4);
    Buffer out_o = make_buffer(device.get(), rows * kDim * 4);
    Buffer out_l = make_buffer(device.get(), rows * 4);
    Buffer tiny = make_buffer(device.get(), rows * 4 - 1);
    const inf_buffer* o_parts[] = {o0.get(), o1.get()};
    const inf_buffer* l_parts[] = {l0.get(), l1.get()};
    EXPECT_OK(inf_attention_merge(2, o_parts, l_parts, 0, kDim, out_o.get(), out_l.get()));
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "inf_attention_merge: parts (0) must be at least 1",
                 inf_attention_merge(0, o_parts, l_parts, rows, kDim, out_o.get(), out_l.get()));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_attention_merge: o_parts is null",
                 inf_attention_merge(2, nullptr, l_parts, rows, kDim, out_o.get(), out_l.get()));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_attention_merge: lse_parts is null",
                 inf_attention_merge(2, o_parts, nullptr, rows, kDim, out_o.get(), out_l.get()));
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "inf_attention_merge: rows (-1) must be >= 0",
                 inf_attention_merge(2, o_parts, l_parts, -1, kDim, out_o.get(), out_l.get()));
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "inf_attention_merge: head_dim (0) must be at least 1",
                 inf_attention_merge(2, o_parts, l_parts, rows, 0, out_o.get(), out_l.get()));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_attention_merge: o_out is null",
                 inf_attention_merge(2, o_parts, l_parts, rows, kDim, nullptr, out_l.get()));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_attention_merge: lse_out is null",
                 inf_attention_merge(2, o_parts, l_parts, rows, kDim, out_o.get(), nullptr));
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "inf_attention_merge: lse_out and o_out are the same buffer",
                 inf_attention_merge(2, o_parts, l_parts, rows, kDim, out_o.get(), out_o.get()));
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "inf_attention_merge: lse_out holds 23 bytes but needs 24 (rows * 4)",
                 inf_attention_merge(2, o_parts, l_parts, rows, kDim, out_o.get(), tiny.get()));
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "inf_attention_merge: o_out holds 23 bytes but needs 384 (rows * head_dim * 4)",
                 inf_attention_merge(2, o_parts, l_parts, rows, kDim, tiny.get(), out_l.get()));
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "rows * head_dim overflows 64 bits",
                 inf_attention_merge(2, o_parts, l_parts, INT64_MAX, 256, out_o.get(), out_l.get()));
    const inf_buffer* null_part[] = {o0.get(), nullptr};
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_attention_merge: o_parts[1] is null",
                 inf_attention_merge(2, null_part, l_parts, rows, kDim, out_o.get(), out_l.get()));
    const inf_buffer* bad_part[] = {l0.get(), reinterpret_cast<inf_buffer*>(uintptr_t{0x7FFFFFFFFFFFFF52})};
    EXPECT_ERROR(INF_STATUS_INVALID_HANDLE, "inf_attention_merge: lse_parts[1] (",
                 inf_attention_merge(2, o_parts, bad_part, rows, kDim, out_o.get(), out_l.get()));
    const inf_buffer* short_parts[] = {o0.get(), tiny.get()};
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "inf_attention_merge: o_parts[1] holds 23 bytes but needs 384",
                 inf_attention_merge(2, short_parts, l_parts, rows, kDim, out_o.get(), out_l.get()));
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "inf_attention_merge: o_out is o_parts[1]: only o_parts[0] may be the output",
                 inf_attention_merge(2, o_parts, l_parts, rows, kDim, o1.get(), out_l.get()));
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "inf_attention_merge: lse_out is lse_parts[1]",
                 inf_attention_merge(2, o_parts, l_parts, rows, kDim, out_o.get(), l1.get()));
}

TEST(AttentionMerge, OnePartAndMinusInfinity) {
    Device device = make_device();
    const int64_t rows = 3;
    // Row 0: both parts see keys; row 1: only part 1; row 2: no part (-inf everywhere).
    const std::vector<float> o_a = random_floats(rows * kDim, 50);
    const std::vector<float> o_b = random_floats(rows * kDim, 51);
    const std::vector<float> lse_a = {0.5F, -INFINITY, -INFINITY};
    const std::vector<float> lse_b = {1.25F, 2.0F, -INFINITY};
    Buffer a = make_buffer(device.get(), rows * kDim * 4);
    Buffer b = make_buffer(device.get(), rows * kDim * 4);
    Buffer la = make_buffer(device.get(), rows * 4);
    Buffer lb = make_buffer(device.get(), rows * 4);
    ASSERT_OK(inf_buffer_write(a.get(), 0, o_a.data(), rows * kDim * 4));
    ASSERT_OK(inf_buffer_write(b.get(), 0, o_b.data(), rows * kDim * 4));
    ASSERT_OK(inf_buffer_write(la.get(), 0, lse_a.data(), rows * 4));
    ASSERT_OK(inf_buffer_write(lb.get(), 0, lse_b.data(), rows * 4));
    Buffer o = make_buffer(device.get(), rows * kDim * 4);
    Buffer lse = make_buffer(device.get(), rows * 4);
    const inf_buffer* o_parts[] = {a.get(), b.get()};
    const inf_buffer* l_parts[] = {la.get(), lb.get()};
    ASSERT_OK(inf_attention_merge(2, o_parts, l_parts, rows, kDim, o.get(), lse.get()));
    std::vector<float> out(rows * kDim);
    std::vector<float> out_lse(rows);
    ASSERT_OK(inf_buffer_read(o.get(), 0, out.data(), out.size() * 4));
    ASSERT_OK(inf_buffer_read(lse.get(), 0, out_lse.data(), out_lse.size() * 4));
    const double s = std::log(std::exp(0.5) + std::exp(1.25));
    EXPECT_NEAR(out_lse[0], s, 1e-6);
    for (std::size_t d = 0; d < kDim; ++d) {
        const double expected = std::exp(0.5 - s) * o_a[d] + std::exp(1.25 - s) * o_b[d];
        EXPECT_NEAR(out[d], expected, 1e-6);
        EXPECT_NEAR(out[kDim + d], o_b[kDim + d], 1e-6);
        EXPECT_EQ(out[2 * kDim + d], 0.0F);
    }
    EXPECT_NEAR(out_lse[1], 2.0, 1e-6);
    EXPECT_EQ(out_lse[2], -INFINITY);
    // One part: a copy.
    ASSERT_OK(inf_attention_merge(1, o_parts + 1, l_parts + 1, rows, kDim, o.get(), lse.get()));
    ASSERT_OK(inf_buffer_read(o.get(), 0, out.data(), out.size() * 4));
    EXPECT_EQ(out[0], o_b[0]);
}
