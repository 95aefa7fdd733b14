// inf_page_select through the C ABI: planted pages (keys aligned with a query head) are the ones
// selected, in both list modes, with the newest page always in; a budget covering the context keeps
// every entry and sparse attention then equals dense; per-query-head lists and streaming heads through
// inf_attention_run; and every validation error with the argument it names.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstddef>
#include <cstring>
#include <limits>
#include <random>
#include <set>
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
constexpr int32_t kGroup = kQHeads / kKvHeads;
constexpr int32_t kDim = 16;
constexpr int32_t kPageSize = 16;
constexpr int32_t kLogical = 4;
constexpr int32_t kPages = 96;
constexpr int32_t kLayer = 1;

inf_page_pool_config select_config(int32_t logical = kLogical, int32_t summary_bits = 0) {
    inf_page_pool_config config = pool_config(INF_DTYPE_F32, /*layers=*/2, kKvHeads, kDim, kPageSize, kPages, logical);
    config.summary_bits = summary_bits;
    return config;
}

// Query head g (of its group) lives on dims [4 * (g % 4), +4) with values +-1, 0.01 elsewhere (never zero).
std::vector<float> structured_q(int32_t rows, std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::bernoulli_distribution sign(0.5);
    std::vector<float> q(static_cast<std::size_t>(rows) * kQHeads * kDim, 0.01F);
    for (int32_t r = 0; r < rows; ++r) {
        for (int32_t g = 0; g < kQHeads; ++g) {
            float* head = q.data() + (static_cast<std::size_t>(r) * kQHeads + static_cast<std::size_t>(g)) * kDim;
            for (int32_t d = 0; d < 4; ++d) {
                head[4 * (g % kGroup) + d] = sign(rng) ? 1.0F : -1.0F;
            }
        }
    }
    return q;
}

struct Sequence {
    int32_t length = 0;
    std::vector<int32_t> pages;  // physical page of each entry
};

// Random small keys and values (|x| <= 0.1) at positions 0 .. length-1 of each sequence; planted[s][g]
// lists entries whose slot 1 + 3 * (g % group) key is 3 * q_g (row rows_of[s]) for query head g.
void fill(inf_page_pool* pool, const std::vector<Sequence>& sequences, const std::vector<float>& q,
          const std::vector<int32_t>& rows_of, const std::vector<std::vector<std::vector<int32_t>>>& planted,
          std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> small(-0.1F, 0.1F);
    for (std::size_t s = 0; s < sequences.size(); ++s) {
        const Sequence& seq = sequences[s];
        std::vector<int32_t> pages, slots;
        std::vector<float> k(static_cast<std::size_t>(seq.length) * kKvHeads * kDim);
        std::vector<float> v(k.size());
        for (auto& x : k) x = small(rng);
        for (auto& x : v) x = small(rng);
        for (int32_t t = 0; t < seq.length; ++t) {
            pages.push_back(seq.pages[static_cast<std::size_t>(t / kPageSize)]);
            slots.push_back(t % kPageSize);
        }
        for (int32_t g = 0; g < kQHeads; ++g) {
            const int32_t h = g / kGroup;
            for (const int32_t entry : planted[s][static_cast<std::size_t>(g)]) {
                const int32_t t = entry * kPageSize + 1 + 3 * (g % kGroup);  // each head of a group its own slot
                const float* qg = q.data() + (static_cast<std::size_t>(rows_of[s]) * kQHeads + static_cast<std::size_t>(g)) * kDim;
                float* key = k.data() + (static_cast<std::size_t>(t) * kKvHeads + static_cast<std::size_t>(h)) * kDim;
                for (int32_t d = 0; d < kDim; ++d) key[d] = 3.0F * qg[d];
            }
        }
        ASSERT_OK(inf_page_pool_append(pool, kLayer, seq.length, pages.data(), slots.data(), k.data(), v.data()));
    }
}

struct Selection {
    std::vector<int32_t> starts;
    std::vector<int32_t> indices;
};

Selection select(inf_page_pool* pool, const inf_page_selection& sel, const inf_buffer* q, int64_t capacity = 4096) {
    const int64_t lists = static_cast<int64_t>(sel.sequences) * (sel.per_query_head ? sel.q_heads : kKvHeads);
    Selection out{std::vector<int32_t>(static_cast<std::size_t>(lists + 1), -7),
                  std::vector<int32_t>(static_cast<std::size_t>(capacity), -7)};
    EXPECT_OK(inf_page_select(pool, kLayer, &sel, q, out.starts.data(), out.indices.data(), capacity));
    return out;
}

struct Tables {
    std::vector<int32_t> q_rows, kv_lengths, page_starts{0}, page_ids;
    inf_page_selection view(int32_t budget, int32_t per_query_head) const {
        inf_page_selection sel{};
        sel.size = sizeof sel;
        sel.sequences = static_cast<int32_t>(kv_lengths.size());
        sel.q_heads = kQHeads;
        sel.q_dtype = INF_DTYPE_F32;
        sel.budget_tokens = budget;
        sel.per_query_head = per_query_head;
        sel.q_rows = q_rows.data();
        sel.kv_lengths = kv_lengths.data();
        sel.page_starts = page_starts.data();
        sel.page_ids = page_ids.data();
        return sel;
    }
};

Tables tables_of(const std::vector<Sequence>& sequences, const std::vector<int32_t>& rows_of) {
    Tables t;
    for (std::size_t s = 0; s < sequences.size(); ++s) {
        t.q_rows.push_back(rows_of[s]);
        t.kv_lengths.push_back(sequences[s].length);
        t.page_ids.insert(t.page_ids.end(), sequences[s].pages.begin(), sequences[s].pages.end());
        t.page_starts.push_back(static_cast<int32_t>(t.page_ids.size()));
    }
    return t;
}

// Two sequences (30 and 21 entries, the last pages partly filled) over shuffled pages.
struct SelectSetup {
    Device device = make_device();
    Pool pool;
    std::vector<Sequence> sequences;
    std::vector<int32_t> rows_of{2, 0};
    std::vector<float> q = structured_q(3, 11);
    Buffer q_buffer;
    Tables tables;
    explicit SelectSetup(const std::vector<std::vector<std::vector<int32_t>>>& planted, int32_t logical = kLogical,
                         int32_t summary_bits = 0)
        : pool(make_pool(device.get(), select_config(logical, summary_bits))) {
        std::vector<int32_t> ids(kPages);
        for (int32_t i = 0; i < kPages; ++i) ids[static_cast<std::size_t>(i)] = i;
        std::shuffle(ids.begin(), ids.end(), std::mt19937(3));
        sequences.push_back({30 * kPageSize - 5, std::vector<int32_t>(ids.begin(), ids.begin() + 30)});
        sequences.push_back({21 * kPageSize - 9, std::vector<int32_t>(ids.begin() + 30, ids.begin() + 51)});
        fill(pool.get(), sequences, q, rows_of, planted, 21);
        q_buffer = make_buffer(device.get(), q.size() * 4);
        EXPECT_OK(inf_buffer_write(q_buffer.get(), 0, q.data(), q.size() * 4));
        tables = tables_of(sequences, rows_of);
    }
};

std::vector<int32_t> list_of(const Selection& sel, int64_t list) {
    return std::vector<int32_t>(sel.indices.begin() + sel.starts[static_cast<std::size_t>(list)],
                                sel.indices.begin() + sel.starts[static_cast<std::size_t>(list + 1)]);
}

}  // namespace

namespace {

void check_planted_per_query_head(int32_t summary_bits) {
    SCOPED_TRACE(::testing::Message() << "summary_bits " << summary_bits);
    // Query head g of sequence s: 3 planted entries of its own.
    std::vector<std::vector<std::vector<int32_t>>> planted(2, std::vector<std::vector<int32_t>>(kQHeads));
    for (int32_t g = 0; g < kQHeads; ++g) {
        planted[0][static_cast<std::size_t>(g)] = {g, 10 + g, 27 - g % 3};
        planted[1][static_cast<std::size_t>(g)] = {(3 * g) % 20, (3 * g + 7) % 20 == (3 * g) % 20 ? 19 : (3 * g + 7) % 20, 1 + (g % 2) * 17};
    }
    // Make the three of each head distinct and away from the newest entry.
    for (auto& seq : planted) {
        for (auto& list : seq) {
            std::sort(list.begin(), list.end());
            list.erase(std::unique(list.begin(), list.end()), list.end());
        }
    }
    SelectSetup setup(planted, kLogical, summary_bits);
    const Selection sel = select(setup.pool.get(), setup.tables.view(4 * kPageSize, 1), setup.q_buffer.get());
    for (int32_t s = 0; s < 2; ++s) {
        const int32_t newest = s == 0 ? 29 : 20;
        for (int32_t g = 0; g < kQHeads; ++g) {
            std::vector<int32_t> want = planted[static_cast<std::size_t>(s)][static_cast<std::size_t>(g)];
            std::vector<int32_t> got = list_of(sel, s * kQHeads + g);
            ASSERT_EQ(got.size(), 4U) << "sequence " << s << " head " << g;
            EXPECT_TRUE(std::is_sorted(got.begin(), got.end()));
            EXPECT_NE(std::find(got.begin(), got.end(), newest), got.end()) << "newest entry missing";
            for (const int32_t e : want) {
                EXPECT_NE(std::find(got.begin(), got.end(), e), got.end()) << "sequence " << s << " head " << g << " entry " << e;
            }
        }
    }
}

}  // namespace

TEST(PageSelect, PerQueryHeadPicksPlantedPagesAndTheNewest) { check_planted_per_query_head(32); }

TEST(PageSelect, CompactSummariesStillFindPlantedPagesAndKeepAllUnderAFullBudget) {
    for (const int32_t bits : {16, 8}) {
        check_planted_per_query_head(bits);
        std::vector<std::vector<std::vector<int32_t>>> planted(2, std::vector<std::vector<int32_t>>(kQHeads));
        planted[0][3] = {5};
        SelectSetup setup(planted, kLogical, bits);
        for (const int32_t per_query_head : {0, 1}) {
            const Selection sel = select(setup.pool.get(), setup.tables.view(30 * kPageSize, per_query_head), setup.q_buffer.get());
            const int64_t lists = 2 * (per_query_head != 0 ? kQHeads : kKvHeads);
            for (int64_t list = 0; list < lists; ++list) {
                const int32_t entries = list < lists / 2 ? 30 : 21;
                std::vector<int32_t> all(static_cast<std::size_t>(entries));
                for (int32_t e = 0; e < entries; ++e) all[static_cast<std::size_t>(e)] = e;
                EXPECT_EQ(list_of(sel, list), all) << "bits " << bits << " list " << list;
            }
        }
    }
}

// The bound at work: for random keys and queries, every logical page's true best q.k (float64, from the
// stored keys) is at most the bound computed from the box read_summary returns, and the page holding the
// single best key of a sequence is selected at budget 2 pages (itself + the newest) whatever the width.
TEST(PageSelect, CompactBoxesBoundTheBestKeyWhichIsSelected) {
    for (const int32_t bits : {32, 16, 8}) {
        Device device = make_device();
        Pool pool = make_pool(device.get(), select_config(kLogical, bits));
        std::mt19937 rng(static_cast<std::uint32_t>(900 + bits));
        std::normal_distribution<float> normal(0.0F, 1.0F);
        const int32_t entries = 24;
        const int32_t length = entries * kPageSize;
        std::vector<int32_t> ids(kPages);
        for (int32_t i = 0; i < kPages; ++i) ids[static_cast<std::size_t>(i)] = i;
        std::shuffle(ids.begin(), ids.end(), rng);
        ids.resize(static_cast<std::size_t>(entries));
        std::vector<float> q(static_cast<std::size_t>(kQHeads * kDim));
        for (auto& x : q) x = normal(rng);
        std::vector<float> k(static_cast<std::size_t>(length) * kKvHeads * kDim);
        for (auto& x : k) x = 0.3F * normal(rng);
        // One needle per query head: a key 2.5 q_g at a random position outside the newest page.
        std::uniform_int_distribution<int32_t> where(0, length - kPageSize - 1);
        std::vector<int32_t> needle(kQHeads);
        for (int32_t g = 0; g < kQHeads; ++g) {
            needle[static_cast<std::size_t>(g)] = where(rng);
            float* key = k.data() + (static_cast<std::size_t>(needle[static_cast<std::size_t>(g)]) * kKvHeads +
                                     static_cast<std::size_t>(g / kGroup)) * kDim;
            for (int32_t d = 0; d < kDim; ++d) key[d] = 2.5F * q[static_cast<std::size_t>(g * kDim + d)];
        }
        std::vector<int32_t> pages, slots;
        for (int32_t t = 0; t < length; ++t) {
            pages.push_back(ids[static_cast<std::size_t>(t / kPageSize)]);
            slots.push_back(t % kPageSize);
        }
        ASSERT_OK(inf_page_pool_append(pool.get(), kLayer, length, pages.data(), slots.data(), k.data(), k.data()));
        // The bound from the dequantised boxes against the exact best key of each logical page.
        std::vector<float> summary(static_cast<std::size_t>(kKvHeads * (kPageSize / kLogical) * 2 * kDim));
        for (int32_t e = 0; e < entries; ++e) {
            ASSERT_OK(inf_page_pool_read_summary(pool.get(), kLayer, ids[static_cast<std::size_t>(e)], summary.data()));
            for (int32_t g = 0; g < kQHeads; ++g) {
                const int32_t h = g / kGroup;
                const float* qg = q.data() + g * kDim;
                for (int32_t sub = 0; sub < kPageSize / kLogical; ++sub) {
                    const float* lo = summary.data() + (static_cast<std::size_t>(h * (kPageSize / kLogical) + sub) * 2) * kDim;
                    double bound = 0.0;
                    for (int32_t d = 0; d < kDim; ++d) bound += std::max(double{qg[d]} * lo[kDim + d], double{qg[d]} * lo[d]);
                    double best = -INFINITY;
                    for (int32_t slot = sub * kLogical; slot < (sub + 1) * kLogical; ++slot) {
                        const float* key = k.data() + (static_cast<std::size_t>(e * kPageSize + slot) * kKvHeads + static_cast<std::size_t>(h)) * kDim;
                        double dot = 0.0;
                        for (int32_t d = 0; d < kDim; ++d) dot += double{qg[d]} * key[d];
                        best = std::max(best, dot);
                    }
                    ASSERT_GE(bound, best) << "bits " << bits << " entry " << e << " head " << g << " sub " << sub;
                }
            }
        }
        Tables t;
        t.q_rows = {0};
        t.kv_lengths = {length};
        t.page_ids = ids;
        t.page_starts = {0, entries};
        Buffer q_buffer = make_buffer(device.get(), q.size() * 4);
        ASSERT_OK(inf_buffer_write(q_buffer.get(), 0, q.data(), q.size() * 4));
        const Selection sel = select(pool.get(), t.view(2 * kPageSize, 1), q_buffer.get());
        for (int32_t g = 0; g < kQHeads; ++g) {
            const int32_t entry = needle[static_cast<std::size_t>(g)] / kPageSize;
            EXPECT_EQ(list_of(sel, g), (std::vector<int32_t>{entry, entries - 1})) << "bits " << bits << " head " << g;
        }
    }
}

TEST(PageSelect, PerKvHeadTakesTheMaxOverTheGroup) {
    // Each KV head: head 0 of its group plants entries A, head 1 plants B; budget 5 pages = A + B + newest.
    std::vector<std::vector<std::vector<int32_t>>> planted(2, std::vector<std::vector<int32_t>>(kQHeads));
    planted[0][0] = {3, 17};
    planted[0][1] = {8, 9};
    planted[0][4] = {0, 28};
    planted[0][6] = {14, 22};
    planted[1][2] = {5, 6};
    planted[1][3] = {12, 19};
    planted[1][5] = {1, 2};
    planted[1][7] = {10, 11};
    SelectSetup setup(planted);
    const Selection sel = select(setup.pool.get(), setup.tables.view(5 * kPageSize + 7, 0), setup.q_buffer.get());
    const std::vector<std::vector<int32_t>> want = {{3, 8, 9, 17, 29}, {0, 14, 22, 28, 29}, {5, 6, 12, 19, 20}, {1, 2, 10, 11, 20}};
    ASSERT_EQ(sel.starts, (std::vector<int32_t>{0, 5, 10, 15, 20}));
    for (int32_t list = 0; list < 4; ++list) {
        EXPECT_EQ(list_of(sel, list), want[static_cast<std::size_t>(list)]) << "list " << list;
    }
}

TEST(PageSelect, NewestPageIsKeptEvenWhenItScoresLowest) {
    std::vector<std::vector<std::vector<int32_t>>> planted(2, std::vector<std::vector<int32_t>>(kQHeads));
    SelectSetup setup(planted);
    // Budget of one page: only the newest entry, whatever the scores.
    const Selection sel = select(setup.pool.get(), setup.tables.view(kPageSize, 0), setup.q_buffer.get());
    EXPECT_EQ(sel.starts, (std::vector<int32_t>{0, 1, 2, 3, 4}));
    EXPECT_EQ(list_of(sel, 0), std::vector<int32_t>{29});
    EXPECT_EQ(list_of(sel, 3), std::vector<int32_t>{20});
}

TEST(PageSelect, FlatSummariesAlsoFindPlantedPages) {
    std::vector<std::vector<std::vector<int32_t>>> planted(2, std::vector<std::vector<int32_t>>(kQHeads));
    planted[0][0] = {4};
    planted[1][4] = {7};
    SelectSetup setup(planted, /*logical=*/kPageSize);
    const Selection sel = select(setup.pool.get(), setup.tables.view(2 * kPageSize, 1), setup.q_buffer.get());
    EXPECT_EQ(list_of(sel, 0), (std::vector<int32_t>{4, 29}));
    EXPECT_EQ(list_of(sel, kQHeads + 4), (std::vector<int32_t>{7, 20}));
}

TEST(PageSelect, EntriesBeyondKvLengthNeverWin) {
    // Sequence 0 claims only its first 10 entries' keys (kv_length 150) through explicit positions; the
    // planted entries 20 and 25 hold keys beyond kv_length and must lose to any real page.
    std::vector<std::vector<std::vector<int32_t>>> planted(2, std::vector<std::vector<int32_t>>(kQHeads));
    planted[0][0] = {20, 25};
    SelectSetup setup(planted);
    Tables t = setup.tables;
    t.kv_lengths[0] = 150;  // entry 9 holds keys 144..159: the newest; keys 150.. of it are stale
    std::vector<int32_t> positions;
    for (int32_t s = 0; s < 2; ++s) {
        for (int32_t j = t.page_starts[static_cast<std::size_t>(s)]; j < t.page_starts[static_cast<std::size_t>(s) + 1]; ++j) {
            positions.push_back((j - t.page_starts[static_cast<std::size_t>(s)]) * kPageSize);
        }
    }
    inf_page_selection view = t.view(3 * kPageSize, 1);
    view.page_positions = positions.data();
    const Selection sel = select(setup.pool.get(), view, setup.q_buffer.get());
    const std::vector<int32_t> got = list_of(sel, 0);
    ASSERT_EQ(got.size(), 3U);
    for (const int32_t e : got) EXPECT_LT(e, 10) << "an entry beyond kv_length was selected";
    EXPECT_NE(std::find(got.begin(), got.end(), 9), got.end());
}

TEST(PageSelect, BudgetCoveringTheContextKeepsAllAndSparseEqualsDense) {
    std::vector<std::vector<std::vector<int32_t>>> planted(2, std::vector<std::vector<int32_t>>(kQHeads));
    planted[0][1] = {6};
    SelectSetup setup(planted);
    for (const int32_t per_query_head : {0, 1}) {
        const Selection sel = select(setup.pool.get(), setup.tables.view(64 * kPageSize, per_query_head), setup.q_buffer.get());
        const int32_t lists = per_query_head ? kQHeads : kKvHeads;
        for (int32_t s = 0; s < 2; ++s) {
            const int32_t entries = s == 0 ? 30 : 21;
            for (int32_t l = 0; l < lists; ++l) {
                std::vector<int32_t> all(static_cast<std::size_t>(entries));
                for (int32_t e = 0; e < entries; ++e) all[static_cast<std::size_t>(e)] = e;
                ASSERT_EQ(list_of(sel, s * lists + l), all);
            }
        }
        // Decode rows: sequence s's query is row rows_of[s] at position kv_length - 1.
        const std::vector<int32_t> q_starts{0, 1, 2};
        const std::vector<int32_t> q_positions{setup.tables.kv_lengths[0] - 1, setup.tables.kv_lengths[1] - 1};
        std::vector<float> q2;
        for (const int32_t row : setup.rows_of) {
            q2.insert(q2.end(), setup.q.begin() + row * kQHeads * kDim, setup.q.begin() + (row + 1) * kQHeads * kDim);
        }
        Buffer qb = make_buffer(setup.device.get(), q2.size() * 4);
        ASSERT_OK(inf_buffer_write(qb.get(), 0, q2.data(), q2.size() * 4));
        std::vector<float> results[2];
        for (int32_t sparse = 0; sparse < 2; ++sparse) {
            inf_attention_batch b{};
            b.size = sizeof b;
            b.sequences = 2;
            b.q_heads = kQHeads;
            b.q_starts = q_starts.data();
            b.q_positions = q_positions.data();
            b.kv_lengths = setup.tables.kv_lengths.data();
            b.page_starts = setup.tables.page_starts.data();
            b.page_ids = setup.tables.page_ids.data();
            if (sparse) {
                b.head_page_starts = sel.starts.data();
                b.head_page_indices = sel.indices.data();
                b.head_lists_per_query_head = per_query_head;
            }
            Buffer o = make_buffer(setup.device.get(), 2 * kQHeads * kDim * 4);
            Buffer lse = make_buffer(setup.device.get(), 2 * kQHeads * 4);
            const float nan = std::numeric_limits<float>::quiet_NaN();
            ASSERT_OK(inf_buffer_fill(o.get(), 0, &nan, 4, 2 * kQHeads * kDim));
            ASSERT_OK(inf_attention_run(setup.pool.get(), kLayer, &b, qb.get(), o.get(), lse.get()));
            results[sparse].resize(2 * kQHeads * kDim);
            ASSERT_OK(inf_buffer_read(o.get(), 0, results[sparse].data(), results[sparse].size() * 4));
        }
        for (std::size_t i = 0; i < results[0].size(); ++i) {
            ASSERT_NEAR(results[1][i], results[0][i], 1e-6) << "o[" << i << "] per_query_head " << per_query_head;
        }
    }
}

TEST(PageSelect, Errors) {
    std::vector<std::vector<std::vector<int32_t>>> planted(2, std::vector<std::vector<int32_t>>(kQHeads));
    SelectSetup setup(planted);
    inf_page_pool* pool = setup.pool.get();
    const inf_buffer* qb = setup.q_buffer.get();
    std::vector<int32_t> starts(64);
    std::vector<int32_t> indices(4096);
    const inf_page_selection good = setup.tables.view(4 * kPageSize, 0);
    EXPECT_OK(inf_page_select(pool, kLayer, &good, qb, starts.data(), indices.data(), 4096));
    const auto call = [&](const inf_page_selection& sel, int64_t capacity = 4096) {
        return inf_page_select(pool, kLayer, &sel, qb, starts.data(), indices.data(), capacity);
    };
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_page_select: pool is null",
                 inf_page_select(nullptr, kLayer, &good, qb, starts.data(), indices.data(), 4096));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_page_select: selection is null",
                 inf_page_select(pool, kLayer, nullptr, qb, starts.data(), indices.data(), 4096));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_page_select: out_head_page_starts is null",
                 inf_page_select(pool, kLayer, &good, qb, nullptr, indices.data(), 4096));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_page_select: out_head_page_indices is null",
                 inf_page_select(pool, kLayer, &good, qb, starts.data(), nullptr, 4096));
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "inf_page_select: layer (2) is out of range",
                 inf_page_select(pool, 2, &good, qb, starts.data(), indices.data(), 4096));
    // 2 sequences x 2 KV heads x 4 pages.
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "inf_page_select: index_capacity (15) is too small: the selection needs 16 indices",
                 call(good, 15));
    inf_page_selection sel = good;
    sel.per_query_head = 1;
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "the selection needs 64 indices", call(sel, 63));
    sel = good;
    sel.budget_tokens = 8;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "inf_page_select: selection->budget_tokens (8) is smaller than one page (16)", call(sel));
    sel = good;
    sel.per_query_head = 2;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "selection->per_query_head (2) must be 0", call(sel));
    sel = good;
    sel.q_heads = 3;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "selection->q_heads (3) must be a positive multiple of the pool's kv_heads (2)", call(sel));
    sel = good;
    sel.q_dtype = INF_DTYPE_BF16;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "selection->q_dtype (2) must be INF_DTYPE_F32", call(sel));
    sel = good;
    sel.sequences = -1;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "selection->sequences (-1) must be >= 0", call(sel));
    sel = good;
    sel.size = 4;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "selection->size (4) is smaller than sizeof(inf_page_selection)", call(sel));
    Tables t = setup.tables;
    t.q_rows[1] = 3;  // q holds 3 rows
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "selection->q_rows[1] (3) is out of range: q holds 3 rows", call(t.view(64, 0)));
    t = setup.tables;
    t.kv_lengths[0] = -2;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "selection->kv_lengths[0] (-2) must be >= 0", call(t.view(64, 0)));
    t = setup.tables;
    t.kv_lengths[1] = 21 * kPageSize + 1;
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "selection->kv_lengths[1] (337) exceeds the 336 keys", call(t.view(64, 0)));
    t = setup.tables;
    t.page_ids[40] = kPages;
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "selection->page_ids[40] (96) is out of range: the pool has 96 pages", call(t.view(64, 0)));
    t = setup.tables;
    t.page_starts[1] = 52;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "selection->page_starts[2] (51) is less than selection->page_starts[1] (52)",
                 call(t.view(64, 0)));
    sel = good;
    sel.q_rows = nullptr;
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "selection->q_rows is null", call(sel));
    std::vector<int32_t> bad_positions(51, 0);
    bad_positions[7] = -16;
    sel = good;
    sel.page_positions = bad_positions.data();
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "selection->page_positions[7] (-16) must be from 0", call(sel));

    // A pool without summaries.
    Pool flat = make_pool(setup.device.get(), select_config(0));
    EXPECT_ERROR(INF_STATUS_UNSUPPORTED, "inf_page_select: the pool keeps no summaries",
                 inf_page_select(flat.get(), kLayer, &good, qb, starts.data(), indices.data(), 4096));
    // No sequences: one start of 0.
    sel = good;
    sel.sequences = 0;
    starts[0] = 9;
    EXPECT_OK(inf_page_select(pool, kLayer, &sel, qb, starts.data(), nullptr, 0));
    EXPECT_EQ(starts[0], 0);
}

// The sparse fields of inf_attention_batch: validation naming the field, and callers built against
// the previous (smaller) batch size still work.
TEST(AttentionRunSparse, FieldErrorsAndOldCallers) {
    std::vector<std::vector<std::vector<int32_t>>> planted(2, std::vector<std::vector<int32_t>>(kQHeads));
    SelectSetup setup(planted);
    const std::vector<int32_t> q_starts{0, 1, 3};
    const std::vector<int32_t> q_positions{400, 300, 301};
    inf_attention_batch b{};
    b.size = sizeof b;
    b.sequences = 2;
    b.q_heads = kQHeads;
    b.q_starts = q_starts.data();
    b.q_positions = q_positions.data();
    b.kv_lengths = setup.tables.kv_lengths.data();
    b.page_starts = setup.tables.page_starts.data();
    b.page_ids = setup.tables.page_ids.data();
    Buffer o = make_buffer(setup.device.get(), 3 * kQHeads * kDim * 4);
    Buffer lse = make_buffer(setup.device.get(), 3 * kQHeads * 4);
    const auto run = [&](const inf_attention_batch& batch) {
        return inf_attention_run(setup.pool.get(), kLayer, &batch, setup.q_buffer.get(), o.get(), lse.get());
    };
    EXPECT_OK(run(b));
    std::vector<float> dense(3 * kQHeads * kDim);
    ASSERT_OK(inf_buffer_read(o.get(), 0, dense.data(), dense.size() * 4));
    // An old caller: size up to head_page_indices, garbage beyond it is not read.
    inf_attention_batch old = b;
    old.size = static_cast<uint32_t>(offsetof(inf_attention_batch, head_lists_per_query_head));
    old.head_lists_per_query_head = 77;
    old.streaming_heads = reinterpret_cast<const int32_t*>(0x10);
    old.local_tokens = -5;
    EXPECT_OK(run(old));
    std::vector<float> again(dense.size());
    ASSERT_OK(inf_buffer_read(o.get(), 0, again.data(), again.size() * 4));
    EXPECT_EQ(again, dense);

    inf_attention_batch bad = b;
    bad.head_lists_per_query_head = 2;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "inf_attention_run: batch->head_lists_per_query_head (2) must be 0", run(bad));
    const std::vector<int32_t> streaming{0, 3};
    bad = b;
    bad.streaming_heads = streaming.data();
    bad.local_tokens = 10;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "batch->streaming_heads[1] (3) must be 0 (dense) or 1 (streaming)", run(bad));
    const std::vector<int32_t> one{0, 1};
    bad = b;
    bad.streaming_heads = one.data();
    bad.local_tokens = 0;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "batch->local_tokens (0) must be >= 1 when batch->streaming_heads marks a streaming head", run(bad));
    bad.local_tokens = 16;
    bad.sink_tokens = -1;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "batch->sink_tokens (-1) must be >= 0", run(bad));
    bad.sink_tokens = 4;
    EXPECT_OK(run(bad));
    // Per-query-head lists: head_page_starts needs sequences * q_heads + 1 entries.
    std::vector<int32_t> head_starts(2 * kQHeads + 1);
    std::vector<int32_t> head_indices;
    for (int32_t l = 0; l < 2 * kQHeads; ++l) {
        head_indices.push_back(l % 5);
        head_starts[static_cast<std::size_t>(l) + 1] = static_cast<int32_t>(head_indices.size());
    }
    bad = b;
    bad.head_page_starts = head_starts.data();
    bad.head_page_indices = head_indices.data();
    bad.head_lists_per_query_head = 1;
    EXPECT_OK(run(bad));
    head_indices[12] = 21;  // sequence 1 (lists 8..15) has 21 entries
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "batch->head_page_indices[12] (21) is out of range: sequence 1 has 21 entries", run(bad));
    head_indices[12] = 0;
    head_starts[9] = head_starts[8] - 1;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "batch->head_page_starts[9] (7) is less than batch->head_page_starts[8] (8)", run(bad));
}

namespace {

// A 700-entry page table (several of the selector's work blocks) over 96 pool pages: pages 90-92 hold keys
// aligned with every query head and appear once, at entries spread over the blocks; the other entries cycle
// through pages 0-89 of small random keys. Per KV head, the selection is exactly those three + the newest.
TEST(PageSelect, LongTablesSplitAcrossThreadsFindPlantedEntriesInEveryBlock) {
    const Device device = make_device();
    const Pool pool = make_pool(device.get(), select_config());
    const std::vector<float> q = structured_q(1, 41);
    std::mt19937 rng(42);
    std::uniform_real_distribution<float> small(-0.1F, 0.1F);
    std::vector<int32_t> pages, slots;
    std::vector<float> k(static_cast<std::size_t>(kPages) * kPageSize * kKvHeads * kDim), v(k.size());
    for (auto& x : k) x = small(rng);
    for (auto& x : v) x = small(rng);
    for (int32_t p = 0; p < kPages; ++p) {
        for (int32_t t = 0; t < kPageSize; ++t) {
            pages.push_back(p);
            slots.push_back(t);
        }
    }
    for (const int32_t p : {90, 91, 92}) {
        for (int32_t g = 0; g < kQHeads; ++g) {
            const int32_t t = p * kPageSize + 1 + 3 * (g % kGroup);
            float* key = k.data() + (static_cast<std::size_t>(t) * kKvHeads + static_cast<std::size_t>(g / kGroup)) * kDim;
            for (int32_t d = 0; d < kDim; ++d) key[d] = 3.0F * q[static_cast<std::size_t>(g) * kDim + static_cast<std::size_t>(d)];
        }
    }
    ASSERT_OK(inf_page_pool_append(pool.get(), kLayer, kPages * kPageSize, pages.data(), slots.data(), k.data(), v.data()));

    constexpr int32_t kEntries = 700;
    Tables t;
    t.q_rows = {0};
    t.kv_lengths = {kEntries * kPageSize};
    for (int32_t e = 0; e < kEntries; ++e) {
        t.page_ids.push_back(e == 300 ? 90 : e == 555 ? 91 : e == 690 ? 92 : e % 90);
    }
    t.page_starts.push_back(kEntries);
    Buffer qb = make_buffer(device.get(), q.size() * 4);
    ASSERT_OK(inf_buffer_write(qb.get(), 0, q.data(), q.size() * 4));
    const Selection sel = select(pool.get(), t.view(4 * kPageSize, 0), qb.get());
    for (int32_t h = 0; h < kKvHeads; ++h) {
        EXPECT_EQ(list_of(sel, h), (std::vector<int32_t>{300, 555, 690, 699})) << "KV head " << h;
    }
}

}  // namespace
