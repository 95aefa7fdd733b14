// The CPU paged-KV kernels (inf::cpu::*) against the float64 reference, at every instruction-set level
// this CPU has: decode and prefill chunks, GQA, head dims, page sizes, storage dtypes, ragged and
// partly filled pages, empty and per-head page lists, remote positions, split-KV, merge; and the pool.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "attention/cpu_attention.h"
#include "attention/cpu_isa.h"
#include "isa_levels.h"
#include "attention/cpu_page_select.h"
#include "attention_reference.h"
#include "core/thread_pool.h"
#include "kv/dtype.h"
#include "kv/page_pool.h"

namespace {

using inf::cpu::Isa;

using inf_test::ForceIsa;
using inf_test::isa_levels;

std::size_t dsize(inf_dtype dtype) { return dtype == INF_DTYPE_F32 ? 4 : dtype == INF_DTYPE_I8 ? 1 : 2; }

struct Spec {
    inf_dtype dtype = INF_DTYPE_F32;
    int q_heads = 8;
    int kv_heads = 2;
    int head_dim = 64;
    int page_size = 16;
    int logical_page_size = 0;
    std::vector<int> kv_lengths{37};
    std::vector<int> rows{1};           // query rows per sequence
    std::vector<int> offsets;           // first key position a sequence's list covers (remote part); empty: 0
    bool explicit_positions = false;    // page_positions non-null
    bool per_head = false;              // head_page_starts / head_page_indices
    bool q_in_pool_dtype = false;
    bool per_query_head = false;        // with per_head: one list per query head
    std::vector<std::int32_t> streaming;  // [kv_heads] Λ-mask flags; empty: all dense
    int sink = 0;
    int local = 0;
    unsigned seed = 1;
};

// A pool layer in host memory, a batch over it, random contents, and the reference answer.
struct Scenario {
    Spec spec;
    std::mt19937 rng;
    inf_kv_layer layer{};
    std::vector<unsigned char> k_store, v_store;
    std::vector<float> k_scales, v_scales;        // INF_DTYPE_I8: one per row
    std::vector<float> k_original, v_original;    // the float32 keys and values given to kv_append
    std::vector<float> summary;
    std::vector<unsigned char> q_store;
    std::vector<float> q_values;
    std::vector<std::int32_t> q_starts, q_positions, kv_lengths, page_starts, page_ids, page_positions;
    std::vector<std::int32_t> head_page_starts, head_page_indices;
    int total_q = 0;
    int max_q = 0;
    int max_entries = 0;

    explicit Scenario(const Spec& s) : spec(s), rng(s.seed) {
        const int sequences = static_cast<int>(spec.kv_lengths.size());
        std::vector<int> entries(static_cast<std::size_t>(sequences));
        int total_entries = 0;
        for (int i = 0; i < sequences; ++i) {
            const int covered = spec.kv_lengths[static_cast<std::size_t>(i)] - offset(i);
            entries[static_cast<std::size_t>(i)] = covered <= 0 ? 0 : (covered + spec.page_size - 1) / spec.page_size;
            total_entries += entries[static_cast<std::size_t>(i)];
        }
        layer.dtype = spec.dtype;
        layer.pages = total_entries + 3;
        layer.kv_heads = spec.kv_heads;
        layer.head_dim = spec.head_dim;
        layer.page_size = spec.page_size;
        layer.logical_page_size = spec.logical_page_size;
        const std::size_t elements = static_cast<std::size_t>(layer.pages) * static_cast<std::size_t>(layer.kv_heads) *
                                     static_cast<std::size_t>(layer.page_size) * static_cast<std::size_t>(layer.head_dim);
        // Unwritten slots hold NaN: a kernel that reads past kv_length shows it.
        k_store.assign(elements * dsize(spec.dtype), 0xFF);
        v_store.assign(elements * dsize(spec.dtype), 0xFF);
        layer.k = k_store.data();
        layer.v = v_store.data();
        if (spec.dtype == INF_DTYPE_I8) {  // NaN scales: a row never written reads as NaN
            k_scales.assign(elements / static_cast<std::size_t>(layer.head_dim), std::numeric_limits<float>::quiet_NaN());
            v_scales.assign(k_scales.size(), std::numeric_limits<float>::quiet_NaN());
            layer.k_scale = k_scales.data();
            layer.v_scale = v_scales.data();
        }
        k_original.assign(elements, std::numeric_limits<float>::quiet_NaN());
        v_original.assign(elements, std::numeric_limits<float>::quiet_NaN());
        if (spec.logical_page_size > 0) {
            summary.assign(static_cast<std::size_t>(layer.pages) * static_cast<std::size_t>(layer.kv_heads) *
                               static_cast<std::size_t>(layer.page_size / layer.logical_page_size) * 2 *
                               static_cast<std::size_t>(layer.head_dim), std::numeric_limits<float>::quiet_NaN());
            layer.summary = summary.data();
        }
        // Non-contiguous page ids.
        std::vector<std::int32_t> free_pages(static_cast<std::size_t>(layer.pages));
        std::iota(free_pages.begin(), free_pages.end(), 0);
        std::shuffle(free_pages.begin(), free_pages.end(), rng);
        std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
        page_starts.push_back(0);
        q_starts.push_back(0);
        std::size_t next_page = 0;
        for (int i = 0; i < sequences; ++i) {
            const int length = spec.kv_lengths[static_cast<std::size_t>(i)];
            const int n = entries[static_cast<std::size_t>(i)];
            for (int e = 0; e < n; ++e) {
                page_ids.push_back(free_pages[next_page++]);
                page_positions.push_back(offset(i) + e * spec.page_size);
            }
            page_starts.push_back(page_starts.back() + n);
            max_entries = std::max(max_entries, n);
            kv_lengths.push_back(length);
            const int rows = spec.rows[static_cast<std::size_t>(i)];
            for (int r = 0; r < rows; ++r) {
                q_positions.push_back(std::max(0, length - rows + r));
            }
            q_starts.push_back(q_starts.back() + rows);
            max_q = std::max(max_q, rows);
            // Keys and values through kv_append.
            const int tokens = std::max(0, length - offset(i));
            if (tokens > 0) {
                std::vector<std::int32_t> pages, slots;
                std::vector<float> k(static_cast<std::size_t>(tokens) * static_cast<std::size_t>(spec.kv_heads * spec.head_dim));
                std::vector<float> v(k.size());
                for (auto& x : k) {
                    x = uniform(rng);
                }
                for (auto& x : v) {
                    x = uniform(rng);
                }
                for (int t = 0; t < tokens; ++t) {
                    pages.push_back(page_ids[static_cast<std::size_t>(page_starts[static_cast<std::size_t>(i)] + t / spec.page_size)]);
                    slots.push_back(t % spec.page_size);
                    for (int h = 0; h < spec.kv_heads; ++h) {
                        const std::size_t D = static_cast<std::size_t>(spec.head_dim);
                        const std::size_t src = (static_cast<std::size_t>(t) * static_cast<std::size_t>(spec.kv_heads) + static_cast<std::size_t>(h)) * D;
                        const std::size_t dst = ((static_cast<std::size_t>(pages.back()) * static_cast<std::size_t>(spec.kv_heads) + static_cast<std::size_t>(h)) *
                                                     static_cast<std::size_t>(spec.page_size) + static_cast<std::size_t>(slots.back())) * D;
                        std::copy_n(k.begin() + static_cast<std::ptrdiff_t>(src), D, k_original.begin() + static_cast<std::ptrdiff_t>(dst));
                        std::copy_n(v.begin() + static_cast<std::ptrdiff_t>(src), D, v_original.begin() + static_cast<std::ptrdiff_t>(dst));
                    }
                }
                inf_kv_append_params append{};
                append.layer = layer;
                append.tokens = tokens;
                append.pages = pages.data();
                append.slots = slots.data();
                append.k = k.data();
                append.v = v.data();
                inf::cpu::kv_append(append);
            }
        }
        total_q = q_starts.back();
        if (spec.per_head) {
            head_page_starts.push_back(0);
            std::bernoulli_distribution keep(0.6);
            for (int i = 0; i < sequences; ++i) {
                for (int h = 0; h < (spec.per_query_head ? spec.q_heads : spec.kv_heads); ++h) {
                    const bool empty = i == 0 && h == 0;
                    int count = 0;
                    for (int e = entries[static_cast<std::size_t>(i)] - 1; e >= 0; --e) {  // reversed order too
                        if (!empty && keep(rng)) {
                            head_page_indices.push_back(e);
                            ++count;
                        }
                    }
                    head_page_starts.push_back(head_page_starts.back() + count);
                }
            }
        }
        // Queries (never zeros), stored in the pool dtype when asked.
        std::uniform_real_distribution<float> qdist(-2.0f, 2.0f);
        const std::size_t q_count = static_cast<std::size_t>(total_q) * static_cast<std::size_t>(spec.q_heads * spec.head_dim);
        const inf_dtype q_dtype = spec.q_in_pool_dtype ? spec.dtype : INF_DTYPE_F32;
        q_store.resize(q_count * dsize(q_dtype));
        q_values.resize(q_count);
        for (std::size_t i = 0; i < q_count; ++i) {
            const float x = qdist(rng);
            if (q_dtype == INF_DTYPE_F32) {
                std::memcpy(q_store.data() + 4 * i, &x, 4);
            } else {
                const std::uint16_t h = q_dtype == INF_DTYPE_BF16 ? inf::f32_to_bf16(x) : inf::f32_to_f16(x);
                std::memcpy(q_store.data() + 2 * i, &h, 2);
            }
            q_values[i] = inf::test::stored_value(q_store.data(), i, q_dtype);
        }
    }

    int offset(int i) const { return spec.offsets.empty() ? 0 : spec.offsets[static_cast<std::size_t>(i)]; }

    inf_attention_params params(float* o, float* lse) const {
        inf_attention_params p{};
        p.layer = layer;
        p.sequences = static_cast<int>(kv_lengths.size());
        p.q_heads = spec.q_heads;
        p.total_q = total_q;
        p.max_q = max_q;
        p.max_entries = max_entries;
        p.scale = 1.0f / std::sqrt(static_cast<float>(spec.head_dim));
        p.q_dtype = spec.q_in_pool_dtype ? spec.dtype : INF_DTYPE_F32;
        p.q = q_store.data();
        p.o = o;
        p.lse = lse;
        p.q_starts = q_starts.data();
        p.q_positions = q_positions.data();
        p.kv_lengths = kv_lengths.data();
        p.page_starts = page_starts.data();
        p.page_ids = page_ids.data();
        p.page_positions = (spec.explicit_positions || !spec.offsets.empty()) ? page_positions.data() : nullptr;
        if (spec.per_head) {
            p.head_page_starts = head_page_starts.data();
            p.head_page_indices = head_page_indices.data();
            p.head_lists_per_query_head = spec.per_query_head ? 1 : 0;
        }
        if (!spec.streaming.empty()) {
            p.streaming_heads = spec.streaming.data();
            p.sink_tokens = spec.sink;
            p.local_tokens = spec.local;
        }
        return p;
    }

    inf::test::RefAttention reference() const {
        const inf_attention_params p = params(nullptr, nullptr);
        return inf::test::reference_attention(p, inf::test::decode_layer(layer.k, layer),
                                              inf::test::decode_layer(layer.v, layer), q_values);
    }

    // Over the float32 keys and values before storage rounding / quantisation.
    inf::test::RefAttention original_reference() const {
        return inf::test::reference_attention(params(nullptr, nullptr), k_original, v_original, q_values);
    }
};

struct Output {
    std::vector<float> o, lse;
};

// Runs attention with NaN-poisoned outputs and a workspace of the size asked for.
Output run_attention(inf_attention_params p) {
    Output out;
    out.o.assign(static_cast<std::size_t>(p.total_q) * static_cast<std::size_t>(p.q_heads * p.layer.head_dim),
                 std::numeric_limits<float>::quiet_NaN());
    out.lse.assign(static_cast<std::size_t>(p.total_q) * static_cast<std::size_t>(p.q_heads),
                   std::numeric_limits<float>::quiet_NaN());
    p.o = out.o.data();
    p.lse = out.lse.data();
    const std::uint64_t bytes = inf::cpu::attention_workspace_bytes(p);
    std::vector<float> workspace(static_cast<std::size_t>((bytes + 3) / 4), std::numeric_limits<float>::quiet_NaN());
    p.workspace = bytes > 0 ? workspace.data() : nullptr;
    p.workspace_bytes = bytes;
    inf::cpu::attention(p);
    return out;
}

double tolerance(inf_dtype) { return 1e-5; }  // the reference uses the stored values: same f32 math

::testing::AssertionResult matches(const std::vector<float>& o, const std::vector<float>& lse,
                                   const inf::test::RefAttention& ref, int head_dim, double tol) {
    for (std::size_t r = 0; r < ref.lse.size(); ++r) {
        const double want = ref.lse[r];
        const double got = lse[r];
        if (std::isinf(want)) {
            if (!(std::isinf(got) && got < 0)) {
                return ::testing::AssertionFailure() << "row " << r << ": lse " << got << ", want -inf";
            }
        } else if (!(std::fabs(got - want) <= tol * std::max(1.0, std::fabs(want)))) {
            return ::testing::AssertionFailure() << "row " << r << ": lse " << got << ", want " << want;
        }
        for (int d = 0; d < head_dim; ++d) {
            const std::size_t i = r * static_cast<std::size_t>(head_dim) + static_cast<std::size_t>(d);
            const double wo = ref.o[i];
            const double go = o[i];
            if (!(std::fabs(go - wo) <= tol * std::max(1.0, std::fabs(wo)))) {
                return ::testing::AssertionFailure() << "row " << r << " dim " << d << ": o " << go << ", want " << wo;
            }
        }
    }
    return ::testing::AssertionSuccess();
}

// Every ISA level; on the SIMD levels also with decode-shaped tiles forced onto the general kernel.
void check_all_levels(const Scenario& scenario, const std::string& label) {
    const auto ref = scenario.reference();
    for (const Isa isa : isa_levels()) {
        ForceIsa force(isa);
        for (const bool lanes : {false, true}) {
            if (lanes && isa == Isa::scalar) {
                continue;
            }
            inf::cpu::set_force_lane_kernel(lanes);
            const Output out = run_attention(scenario.params(nullptr, nullptr));
            inf::cpu::set_force_lane_kernel(false);
            EXPECT_TRUE(matches(out.o, out.lse, ref, scenario.spec.head_dim, tolerance(scenario.spec.dtype)))
                << label << " isa " << inf::cpu::isa_name(isa) << (lanes ? " (general kernel)" : "");
        }
    }
}

std::string describe(const Spec& s) {
    const char* names[] = {"f32", "f16", "bf16", "i8"};
    return std::string(names[s.dtype]) + " q_heads " + std::to_string(s.q_heads) + " kv_heads " +
           std::to_string(s.kv_heads) + " head_dim " + std::to_string(s.head_dim) + " page " + std::to_string(s.page_size);
}

const inf_dtype kDtypes[] = {INF_DTYPE_F32, INF_DTYPE_F16, INF_DTYPE_BF16, INF_DTYPE_I8};

}  // namespace

TEST(CpuAttention, DecodeMatchesReference) {
    unsigned seed = 10;
    for (const int ratio : {1, 4, 8}) {
        for (const int head_dim : {64, 128}) {
            for (const int page_size : {16, 64, 128}) {
                for (const inf_dtype dtype : kDtypes) {
                    Spec s;
                    s.dtype = dtype;
                    s.kv_heads = 2;
                    s.q_heads = 2 * ratio;
                    s.head_dim = head_dim;
                    s.page_size = page_size;
                    s.kv_lengths = {1, 300, page_size, 77};  // ragged, a partly filled last page
                    s.rows = {1, 1, 1, 1};
                    s.seed = seed++;
                    check_all_levels(Scenario(s), describe(s));
                }
            }
        }
    }
}

TEST(CpuAttention, PrefillChunksMatchReference) {
    unsigned seed = 100;
    for (const int ratio : {1, 4, 8}) {
        for (const int head_dim : {64, 128}) {
            for (const int page_size : {16, 64}) {
                Spec s;
                s.kv_heads = 2;
                s.q_heads = 2 * ratio;
                s.head_dim = head_dim;
                s.page_size = page_size;
                s.kv_lengths = {150, 45, 9};
                s.rows = {33, 45, 2};  // a chunk at the end of a longer context, a first chunk, a short one
                s.seed = seed++;
                check_all_levels(Scenario(s), describe(s));
            }
        }
    }
}

TEST(CpuAttention, PrefillStorageDtypesAndPoolDtypeQueries) {
    unsigned seed = 200;
    for (const inf_dtype dtype : kDtypes) {
        for (const bool q_in_pool : {false, true}) {
            if (q_in_pool && dtype == INF_DTYPE_I8) {
                continue;  // int8 pools take float32 queries only (checked by the API)
            }
            Spec s;
            s.dtype = dtype;
            s.kv_heads = 2;
            s.q_heads = 8;
            s.head_dim = 128;
            s.page_size = 16;
            s.kv_lengths = {120, 31};
            s.rows = {20, 31};
            s.q_in_pool_dtype = q_in_pool;
            s.seed = seed++;
            check_all_levels(Scenario(s), describe(s) + (q_in_pool ? " q in pool dtype" : ""));
        }
    }
}

TEST(CpuAttention, EmptyPageListsGiveZeroAndMinusInfinity) {
    Spec s;
    s.kv_lengths = {0, 40, 0};
    s.rows = {1, 3, 2};
    const Scenario scenario(s);
    for (const Isa isa : isa_levels()) {
        ForceIsa force(isa);
        const Output out = run_attention(scenario.params(nullptr, nullptr));
        const std::size_t D = static_cast<std::size_t>(s.head_dim);
        for (const int row : {0, 4, 5}) {
            for (int h = 0; h < s.q_heads; ++h) {
                const std::size_t r = static_cast<std::size_t>(row * s.q_heads + h);
                EXPECT_TRUE(std::isinf(out.lse[r]) && out.lse[r] < 0) << out.lse[r];
                for (std::size_t d = 0; d < D; ++d) {
                    ASSERT_EQ(out.o[r * D + d], 0.0f);
                }
            }
        }
    }
    check_all_levels(scenario, "empty lists");
}

TEST(CpuAttention, PerHeadPageListsAndExplicitPositions) {
    unsigned seed = 300;
    for (const inf_dtype dtype : kDtypes) {
        for (const int rows : {1, 9}) {
            Spec s;
            s.dtype = dtype;
            s.kv_heads = 4;
            s.q_heads = 16;
            s.page_size = 16;
            s.kv_lengths = {200, 90, 17};
            s.rows = {rows, rows, 1};
            s.per_head = true;  // sequence 0 head 0 reads nothing
            s.explicit_positions = true;
            s.seed = seed++;
            check_all_levels(Scenario(s), describe(s) + " per head");
        }
    }
}

TEST(CpuAttention, RemotePartPositions) {
    // The lists cover only positions from an offset on (the rest lives elsewhere); a query before the
    // offset sees nothing.
    Spec s;
    s.kv_heads = 2;
    s.q_heads = 8;
    s.page_size = 16;
    s.kv_lengths = {400, 130};
    s.offsets = {256, 64};
    s.rows = {1, 70};  // sequence 1's first rows sit before its offset
    s.seed = 400;
    check_all_levels(Scenario(s), "remote part");
}

TEST(CpuAttention, LongDecodeSplitsAcrossThreads) {
    for (const inf_dtype dtype : kDtypes) {
        Spec s;
        s.dtype = dtype;
        s.kv_heads = 1;
        s.q_heads = 4;
        s.head_dim = 128;
        s.page_size = 64;
        s.kv_lengths = {3000};
        s.rows = {1};
        s.seed = 500 + static_cast<unsigned>(dtype);
        const Scenario scenario(s);
        if (inf::ThreadPool::instance().threads() > 1) {
            EXPECT_GT(inf::cpu::attention_workspace_bytes(scenario.params(nullptr, nullptr)), 0U);
        }
        check_all_levels(scenario, describe(s) + " long decode");
    }
}

TEST(CpuAttention, SplitThenMergeEqualsUnsplit) {
    Spec s;
    s.kv_heads = 2;
    s.q_heads = 8;
    s.head_dim = 128;
    s.page_size = 16;
    s.kv_lengths = {333};
    s.rows = {5};
    s.explicit_positions = true;
    s.seed = 600;
    const Scenario scenario(s);
    for (const Isa isa : isa_levels()) {
        ForceIsa force(isa);
        const Output whole = run_attention(scenario.params(nullptr, nullptr));
        const int n = scenario.page_starts[1];
        const int half = n / 2;
        // Part A: entries [0, half); part B: entries [half, n), both with their true positions.
        std::vector<std::int32_t> starts_a{0, half}, starts_b{0, n - half};
        std::vector<std::int32_t> ids_b(scenario.page_ids.begin() + half, scenario.page_ids.end());
        std::vector<std::int32_t> pos_b(scenario.page_positions.begin() + half, scenario.page_positions.end());
        inf_attention_params a = scenario.params(nullptr, nullptr);
        a.page_starts = starts_a.data();
        a.max_entries = half;
        inf_attention_params b = scenario.params(nullptr, nullptr);
        b.page_starts = starts_b.data();
        b.page_ids = ids_b.data();
        b.page_positions = pos_b.data();
        b.max_entries = n - half;
        Output out_a = run_attention(a);
        const Output out_b = run_attention(b);
        const float* o_parts[] = {out_a.o.data(), out_b.o.data()};
        const float* lse_parts[] = {out_a.lse.data(), out_b.lse.data()};
        inf_attention_merge_params merge{};
        merge.parts = 2;
        merge.rows = static_cast<std::int64_t>(out_a.lse.size());
        merge.head_dim = s.head_dim;
        merge.o_parts = o_parts;
        merge.lse_parts = lse_parts;
        merge.o_out = out_a.o.data();  // in place over part 0
        merge.lse_out = out_a.lse.data();
        inf::cpu::attention_merge(merge);
        inf::test::RefAttention want;
        want.o.assign(whole.o.begin(), whole.o.end());
        want.lse.assign(whole.lse.begin(), whole.lse.end());
        EXPECT_TRUE(matches(out_a.o, out_a.lse, want, s.head_dim, 1e-5)) << inf::cpu::isa_name(isa);
    }
}

namespace {

struct Partials {
    std::vector<std::vector<float>> o, lse;
};

Partials random_partials(int parts, std::int64_t rows, int head_dim, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> value(-1.0f, 1.0f);
    std::uniform_real_distribution<float> score(-5.0f, 5.0f);
    Partials p;
    for (int i = 0; i < parts; ++i) {
        std::vector<float> o(static_cast<std::size_t>(rows * head_dim));
        std::vector<float> lse(static_cast<std::size_t>(rows));
        for (auto& x : o) {
            x = value(rng);
        }
        for (std::int64_t r = 0; r < rows; ++r) {
            // Row 0: all parts empty; every third row: this part empty (its o is garbage NaN).
            const bool empty = r == 0 || (r + i) % 3 == 0;
            lse[static_cast<std::size_t>(r)] = empty ? -INFINITY : score(rng);
            if (empty) {
                for (int d = 0; d < head_dim; ++d) {
                    o[static_cast<std::size_t>(r * head_dim + d)] = r == 0 ? 0.0f : std::numeric_limits<float>::quiet_NaN();
                }
            }
        }
        p.o.push_back(std::move(o));
        p.lse.push_back(std::move(lse));
    }
    return p;
}

Output merge_of(const std::vector<const float*>& o_parts, const std::vector<const float*>& lse_parts, std::int64_t rows,
                int head_dim) {
    Output out;
    out.o.assign(static_cast<std::size_t>(rows * head_dim), std::numeric_limits<float>::quiet_NaN());
    out.lse.assign(static_cast<std::size_t>(rows), std::numeric_limits<float>::quiet_NaN());
    inf_attention_merge_params m{};
    m.parts = static_cast<std::int32_t>(o_parts.size());
    m.rows = rows;
    m.head_dim = head_dim;
    m.o_parts = o_parts.data();
    m.lse_parts = lse_parts.data();
    m.o_out = out.o.data();
    m.lse_out = out.lse.data();
    inf::cpu::attention_merge(m);
    return out;
}

inf::test::RefAttention as_ref(const Output& out) {
    inf::test::RefAttention r;
    r.o.assign(out.o.begin(), out.o.end());
    r.lse.assign(out.lse.begin(), out.lse.end());
    return r;
}

}  // namespace

TEST(CpuAttentionMerge, MatchesReferenceAndIsOrderFree) {
    const std::int64_t rows = 61;
    const int D = 64;
    const Partials p = random_partials(3, rows, D, 7);
    const auto a = p.o[0].data(), b = p.o[1].data(), c = p.o[2].data();
    const auto la = p.lse[0].data(), lb = p.lse[1].data(), lc = p.lse[2].data();
    const Output abc = merge_of({a, b, c}, {la, lb, lc}, rows, D);
    // The partials' empty rows carry NaN o, which the reference (weight 0) skips too.
    EXPECT_TRUE(matches(abc.o, abc.lse, inf::test::reference_merge({a, b, c}, {la, lb, lc}, rows, D), D, 1e-6));
    const Output cba = merge_of({c, b, a}, {lc, lb, la}, rows, D);
    EXPECT_TRUE(matches(cba.o, cba.lse, as_ref(abc), D, 1e-6));
    const Output ab = merge_of({a, b}, {la, lb}, rows, D);
    const Output ab_c = merge_of({ab.o.data(), c}, {ab.lse.data(), lc}, rows, D);
    EXPECT_TRUE(matches(ab_c.o, ab_c.lse, as_ref(abc), D, 1e-6));
    const Output bc = merge_of({b, c}, {lb, lc}, rows, D);
    const Output a_bc = merge_of({a, bc.o.data()}, {la, bc.lse.data()}, rows, D);
    EXPECT_TRUE(matches(a_bc.o, a_bc.lse, as_ref(abc), D, 1e-6));
    // Row 0: every part empty.
    EXPECT_TRUE(std::isinf(abc.lse[0]) && abc.lse[0] < 0);
    for (int d = 0; d < D; ++d) {
        EXPECT_EQ(abc.o[static_cast<std::size_t>(d)], 0.0f);
    }
}

TEST(CpuAttentionMerge, OutputMayAliasPartZero) {
    const std::int64_t rows = 5000;  // large enough for the threaded path
    const int D = 32;
    Partials p = random_partials(2, rows, D, 9);
    const Output want = merge_of({p.o[0].data(), p.o[1].data()}, {p.lse[0].data(), p.lse[1].data()}, rows, D);
    const float* o_parts[] = {p.o[0].data(), p.o[1].data()};
    const float* lse_parts[] = {p.lse[0].data(), p.lse[1].data()};
    inf_attention_merge_params m{};
    m.parts = 2;
    m.rows = rows;
    m.head_dim = D;
    m.o_parts = o_parts;
    m.lse_parts = lse_parts;
    m.o_out = p.o[0].data();
    m.lse_out = p.lse[0].data();
    inf::cpu::attention_merge(m);
    EXPECT_TRUE(matches(p.o[0], p.lse[0], as_ref(want), D, 0.0));
}

TEST(CpuKvAppend, StoresRoundedValuesAndSummaries) {
    for (const inf_dtype dtype : kDtypes) {
        const int heads = 2, D = 16, page_size = 16, lps = 4, pages = 3;
        std::vector<unsigned char> k(static_cast<std::size_t>(pages * heads * page_size * D) * dsize(dtype));
        std::vector<unsigned char> v(k.size());
        std::vector<float> summary(static_cast<std::size_t>(pages * heads * (page_size / lps) * 2 * D), 123.0f);
        std::vector<float> k_scales(static_cast<std::size_t>(pages * heads * page_size), std::numeric_limits<float>::quiet_NaN());
        std::vector<float> v_scales(k_scales.size(), std::numeric_limits<float>::quiet_NaN());
        const bool int8 = dtype == INF_DTYPE_I8;
        inf_kv_layer layer{k.data(), v.data(), summary.data(), dtype, pages, heads, D, page_size, lps, 32,
                           int8 ? k_scales.data() : nullptr, int8 ? v_scales.data() : nullptr};
        std::mt19937 rng(11);
        std::uniform_real_distribution<float> uniform(-3.0f, 3.0f);
        // Two rounds to page 2 slots 0..5: the second must restart the summaries, not widen stale ones.
        for (int round = 0; round < 2; ++round) {
            const int tokens = 6;
            std::vector<std::int32_t> page_list(tokens, 2), slots(tokens);
            std::iota(slots.begin(), slots.end(), 0);
            std::vector<float> kin(static_cast<std::size_t>(tokens * heads * D)), vin(kin.size());
            for (auto& x : kin) {
                x = uniform(rng) * (round == 0 ? 10.0f : 1.0f);
            }
            for (auto& x : vin) {
                x = uniform(rng);
            }
            inf_kv_append_params params{layer, tokens, page_list.data(), slots.data(), kin.data(), vin.data()};
            inf::cpu::kv_append(params);
            for (int h = 0; h < heads; ++h) {
                for (int sub = 0; sub < 2; ++sub) {
                    const int first = sub * lps;
                    const int last = std::min(tokens, first + lps);
                    for (int d = 0; d < D; ++d) {
                        float mn = INFINITY, mx = -INFINITY;
                        for (int t = first; t < last; ++t) {
                            const std::size_t src = static_cast<std::size_t>((t * heads + h) * D + d);
                            const std::size_t dst = static_cast<std::size_t>(((2 * heads + h) * page_size + t) * D + d);
                            float key = inf::test::stored_value(k.data(), dst, dtype);
                            float value = inf::test::stored_value(v.data(), dst, dtype);
                            float want_k = kin[src], want_v = vin[src];
                            if (int8) {
                                // An integer code within +-127 times the row's scale max|x| / 127, within half
                                // a step of the input; the summary holds the dequantised key.
                                const std::size_t row = dst / static_cast<std::size_t>(D);
                                for (const auto& [code, scale, given, in] :
                                     {std::tuple{key, k_scales[row], want_k, &kin}, std::tuple{value, v_scales[row], want_v, &vin}}) {
                                    double m = 0.0;
                                    for (int e = 0; e < D; ++e) {
                                        m = std::max(m, std::fabs(double{(*in)[static_cast<std::size_t>((t * heads + h) * D + e)]}));
                                    }
                                    ASSERT_NEAR(scale, m / 127.0, m / 127.0 * 1e-6);
                                    ASSERT_EQ(code, std::nearbyint(code));
                                    ASSERT_LE(std::fabs(code), 127.0f);
                                    ASSERT_LE(std::fabs(double{code} * double{scale} - double{given}), m / 127.0 * (0.5 + 1e-5));
                                }
                                key *= k_scales[row];
                                value *= v_scales[row];
                                want_k = key;
                                want_v = value;
                            } else if (dtype == INF_DTYPE_BF16) {
                                want_k = inf::bf16_to_f32(inf::f32_to_bf16(want_k));
                                want_v = inf::bf16_to_f32(inf::f32_to_bf16(want_v));
                            } else if (dtype == INF_DTYPE_F16) {
                                want_k = inf::f16_to_f32(inf::f32_to_f16(want_k));
                                want_v = inf::f16_to_f32(inf::f32_to_f16(want_v));
                            }
                            ASSERT_EQ(key, want_k);
                            ASSERT_EQ(value, want_v);
                            mn = std::min(mn, key);
                            mx = std::max(mx, key);
                        }
                        const std::size_t at = static_cast<std::size_t>((((2 * heads + h) * (page_size / lps) + sub) * 2) * D + d);
                        EXPECT_EQ(summary[at], mn);
                        EXPECT_EQ(summary[at + static_cast<std::size_t>(D)], mx);
                    }
                }
            }
        }
        // Pages 0 and 1 untouched.
        EXPECT_EQ(summary[0], 123.0f);
    }
}

TEST(CpuKvAppend, RoundsToNearestEven) {
    // 1 + 2^-8 is halfway between two bf16 values (1 and 1 + 2^-7): ties to even gives 1.
    const float tie = 1.0f + 1.0f / 256.0f;
    std::vector<std::uint16_t> k(16), v(16);
    std::vector<float> kin(16, tie), vin(16, 1.0f + 3.0f / 256.0f);  // 1+3*2^-8 -> 1+2^-6 (even)
    inf_kv_layer layer{k.data(), v.data(), nullptr, INF_DTYPE_BF16, 1, 1, 16, 16, 0, 32, nullptr, nullptr};
    const std::int32_t page = 0, slot = 0;
    inf_kv_append_params params{layer, 1, &page, &slot, kin.data(), vin.data()};
    inf::cpu::kv_append(params);
    EXPECT_EQ(k[0], 0x3F80);
    EXPECT_EQ(v[0], 0x3F82);
    // f16: 1 + 2^-11 ties to 1; 65520 rounds to infinity.
    std::vector<float> kin16(16, 1.0f + 1.0f / 2048.0f), vin16(16, 65520.0f);
    layer.dtype = INF_DTYPE_F16;
    params.layer = layer;
    params.k = kin16.data();
    params.v = vin16.data();
    inf::cpu::kv_append(params);
    EXPECT_EQ(k[0], 0x3C00);
    EXPECT_EQ(v[0], 0x7C00);
}

TEST(ThreadPool, CoversEveryIndexOnceAndRethrows) {
    inf::ThreadPool& pool = inf::ThreadPool::instance();
    std::vector<std::atomic<int>> hits(10007);
    pool.parallel_for(static_cast<std::int64_t>(hits.size()), [&](std::int64_t begin, std::int64_t end, int thread) {
        EXPECT_GE(thread, 0);
        EXPECT_LT(thread, pool.threads());
        for (std::int64_t i = begin; i < end; ++i) {
            hits[static_cast<std::size_t>(i)].fetch_add(1);
        }
    }, 3);
    for (const auto& hit : hits) {
        ASSERT_EQ(hit.load(), 1);
    }
    EXPECT_THROW(pool.parallel_for(1000, [](std::int64_t begin, std::int64_t, int) {
        if (begin >= 500) {
            throw std::runtime_error("task failed");
        }
    }, 1), std::runtime_error);
    // Usable after a failure, and nested calls run inline.
    std::atomic<int> total{0};
    pool.parallel_for(8, [&](std::int64_t begin, std::int64_t end, int) {
        for (std::int64_t i = begin; i < end; ++i) {
            pool.parallel_for(4, [&](std::int64_t b, std::int64_t e, int) { total += static_cast<int>(e - b); }, 1);
        }
    }, 1);
    EXPECT_EQ(total.load(), 32);
    inf::ThreadPool local(3);
    std::atomic<int> sum{0};
    local.parallel_for(100, [&](std::int64_t b, std::int64_t e, int) { sum += static_cast<int>(e - b); });
    EXPECT_EQ(sum.load(), 100);
}

// Λ mask: streaming heads see exactly the sink and local keys (the reference drops every other key),
// dense heads everything, in one call: decode rows and prefill chunks, windows that cut pages and key
// blocks, sinks of 0, windows longer than the context, split-KV, every ISA level.
TEST(CpuAttention, StreamingHeadsMatchSinkPlusLocalReference) {
    unsigned seed = 900;
    struct Window {
        int sink;
        int local;
    };
    for (const Window w : {Window{16, 32}, Window{5, 37}, Window{0, 64}, Window{64, 1}, Window{3, 5000}}) {
        for (const inf_dtype dtype : {INF_DTYPE_F32, INF_DTYPE_BF16}) {
            for (const int page_size : {16, 64}) {
                Spec s;
                s.dtype = dtype;
                s.kv_heads = 4;
                s.q_heads = 16;
                s.head_dim = 64;
                s.page_size = page_size;
                s.kv_lengths = {700, 333, 90, 2100};
                s.rows = {1, 40, 1, 70};  // decode and prefill chunks
                s.streaming = {1, 0, 1, 0};
                s.sink = w.sink;
                s.local = w.local;
                s.seed = seed++;
                check_all_levels(Scenario(s), describe(s) + " sink " + std::to_string(w.sink) + " local " +
                                                  std::to_string(w.local));
            }
        }
    }
}

// A decode over a long list on few sequences takes the split-KV path: parts wholly outside the band
// give -inf partials that the merge must ignore.
TEST(CpuAttention, StreamingHeadsWithSplitKv) {
    Spec s;
    s.kv_heads = 2;
    s.q_heads = 8;
    s.head_dim = 128;
    s.page_size = 16;
    s.kv_lengths = {6000};
    s.rows = {1};
    s.streaming = {1, 0};
    s.sink = 20;
    s.local = 100;
    s.seed = 77;
    check_all_levels(Scenario(s), "split streaming");
    s.rows = {3};
    s.streaming = {1, 1};
    check_all_levels(Scenario(s), "split streaming, three rows");
}

// Per-query-head page lists: the q heads of a group read different pages (and some none), alone and
// together with streaming heads and explicit positions.
TEST(CpuAttention, PerQueryHeadListsMatchReference) {
    unsigned seed = 950;
    for (const int ratio : {1, 4}) {
        for (const int rows : {1, 9}) {
            for (const inf_dtype dtype : {INF_DTYPE_F32, INF_DTYPE_F16}) {
                Spec s;
                s.dtype = dtype;
                s.kv_heads = 2;
                s.q_heads = 2 * ratio;
                s.head_dim = 64;
                s.page_size = 16;
                s.kv_lengths = {300, 77, 1000};
                s.rows = {rows, 1, rows};
                s.per_head = true;
                s.per_query_head = true;
                s.explicit_positions = (seed % 2) == 0;
                s.seed = seed++;
                check_all_levels(Scenario(s), describe(s) + " per query head");
                s.streaming = {0, 1};
                s.sink = 16;
                s.local = 50;
                check_all_levels(Scenario(s), describe(s) + " per query head, streaming");
            }
        }
    }
}

// ---- compact page summaries (summary_bits 16 and 8) ----

TEST(CompactSummary, CodecsRoundOutward) {
    std::mt19937 rng(77);
    std::uniform_real_distribution<float> mantissa(1.0F, 2.0F);
    std::uniform_int_distribution<int> exponent(-140, 127);
    std::vector<float> values = {0.0F, -0.0F, 1.0F, -1.0F, std::numeric_limits<float>::max(), -std::numeric_limits<float>::max(),
                                 std::numeric_limits<float>::denorm_min(), -std::numeric_limits<float>::denorm_min(),
                                 INFINITY, -INFINITY, 1.00390625F, -1.00390625F};
    for (int i = 0; i < 20000; ++i) {
        const float x = std::ldexp(mantissa(rng), exponent(rng));
        values.push_back(i % 2 == 0 ? x : -x);
    }
    for (const float x : values) {
        const float down = inf::bf16_to_f32(inf::bf16_round_down(x));
        const float up = inf::bf16_to_f32(inf::bf16_round_up(x));
        ASSERT_LE(down, x) << x;
        ASSERT_GE(up, x) << x;
        // Tight: equal when x is a bfloat16, else neighbours (next representable above down is up).
        const float nearest = inf::bf16_to_f32(inf::f32_to_bf16(x));
        ASSERT_TRUE(nearest == down || nearest == up) << x;
        if (down != up) {
            std::uint32_t bits = 0;
            std::memcpy(&bits, &down, sizeof bits);
            const std::uint16_t next = down >= 0.0F ? static_cast<std::uint16_t>((bits >> 16) + 1) : static_cast<std::uint16_t>((bits >> 16) - 1);
            ASSERT_EQ(inf::bf16_to_f32(next), up) << x;
        }
    }
    // int8 boxes: random ranges of every scale (subnormal to near overflow), one-sided, zero, flat.
    const int dim = 24;
    std::vector<float> lo(dim), hi(dim), dlo(dim), dhi(dim);
    std::vector<std::int8_t> codes(2 * dim);
    std::uniform_real_distribution<float> unit(-1.0F, 1.0F);
    for (int trial = 0; trial < 3000; ++trial) {
        const float magnitude = std::ldexp(1.0F, trial % 3 == 0 ? -140 + trial % 50 : (trial % 250) - 124);
        for (int d = 0; d < dim; ++d) {
            const float spread = trial % 7 == 0 ? 0.0F : magnitude * std::ldexp(unit(rng), -(d % 9));
            const float a = magnitude * unit(rng) * (trial % 5 == 0 ? 0.0F : 1.0F);
            lo[static_cast<std::size_t>(d)] = std::min(a, a + spread);
            hi[static_cast<std::size_t>(d)] = std::max(a, a + spread);
        }
        float scale = -1.0F;
        inf::encode_int8_box(lo.data(), hi.data(), dim, codes.data(), &scale);
        inf::decode_int8_box(codes.data(), scale, dim, dlo.data(), dhi.data());
        float m = 0.0F;
        for (int d = 0; d < dim; ++d) m = std::max({m, std::fabs(lo[static_cast<std::size_t>(d)]), std::fabs(hi[static_cast<std::size_t>(d)])});
        ASSERT_GE(scale * 127.0F, m) << trial;
        for (std::size_t d = 0; d < static_cast<std::size_t>(dim); ++d) {
            ASSERT_LE(dlo[d], lo[d]) << trial << " " << d;
            ASSERT_GE(dhi[d], hi[d]) << trial << " " << d;
            // At most one step (plus float rounding) outside: the box is tight, not merely safe.
            ASSERT_LE(static_cast<double>(lo[d]) - dlo[d], 1.0001 * scale + 1e-44) << trial << " " << d;
            ASSERT_LE(static_cast<double>(dhi[d]) - hi[d], 1.0001 * scale + 1e-44) << trial << " " << d;
        }
    }
    // Empty and infinite boxes.
    float scale = 0.0F;
    std::fill(lo.begin(), lo.end(), INFINITY);
    std::fill(hi.begin(), hi.end(), -INFINITY);
    inf::encode_int8_box(lo.data(), hi.data(), dim, codes.data(), &scale);
    inf::decode_int8_box(codes.data(), scale, dim, dlo.data(), dhi.data());
    EXPECT_TRUE(std::all_of(dlo.begin(), dlo.end(), [](float x) { return x == INFINITY; }));
    EXPECT_TRUE(std::all_of(dhi.begin(), dhi.end(), [](float x) { return x == -INFINITY; }));
    std::fill(lo.begin(), lo.end(), 1.0F);
    std::fill(hi.begin(), hi.end(), 2.0F);
    hi[5] = INFINITY;
    inf::encode_int8_box(lo.data(), hi.data(), dim, codes.data(), &scale);
    inf::decode_int8_box(codes.data(), scale, dim, dlo.data(), dhi.data());
    EXPECT_EQ(dhi[5], INFINITY);
    EXPECT_EQ(dlo[0], -INFINITY);
}

// The selector's scores (every ISA level, every width) against float64: at least the exact best q.k of
// the logical page's keys (the bound; slack only for float32 summation), and equal to the float64 bound
// of the decoded box (the conversions in the SIMD loops are right).
TEST(CompactSummary, SelectorScoresBoundEveryKeyOfTheLogicalPage) {
    const int heads = 2, page_size = 16, lps = 4, pages = 3, subs = page_size / lps, G = 5;
    for (const Isa isa : isa_levels()) {
        ForceIsa force(isa);
        for (const int bits : {32, 16, 8}) {
            for (const int D : {16, 24, 128}) {
                SCOPED_TRACE(::testing::Message() << inf::cpu::isa_name(isa) << " bits " << bits << " dim " << D);
                std::mt19937 rng(static_cast<std::uint32_t>(bits * 1000 + D));
                std::normal_distribution<float> normal(0.0F, 1.0F);
                std::uniform_int_distribution<int> exponent(-4, 4);
                const std::size_t Dz = static_cast<std::size_t>(D);
                const std::size_t boxes = static_cast<std::size_t>(heads * subs);
                const std::size_t values = 2 * Dz;
                const std::size_t page_bytes = bits == 8 ? boxes * (values + 4) : boxes * values * static_cast<std::size_t>(bits / 8);
                std::vector<float> storage(pages * page_bytes / 4 + 1);
                auto* base = reinterpret_cast<unsigned char*>(storage.data());
                // keys[page][box][slot][d] with per-dim scales 2^-4 .. 2^4 and offsets.
                std::vector<float> keys(static_cast<std::size_t>(pages) * boxes * static_cast<std::size_t>(lps) * Dz);
                std::vector<float> dim_scale(Dz), dim_offset(Dz);
                for (std::size_t d = 0; d < Dz; ++d) {
                    dim_scale[d] = std::ldexp(1.0F, exponent(rng));
                    dim_offset[d] = dim_scale[d] * normal(rng);
                }
                for (std::size_t i = 0; i < keys.size(); ++i) keys[i] = dim_offset[i % Dz] + dim_scale[i % Dz] * normal(rng);
                for (std::size_t p = 0; p < static_cast<std::size_t>(pages); ++p) {
                    unsigned char* page = base + p * page_bytes;
                    for (std::size_t b = 0; b < boxes; ++b) {
                        std::vector<float> lo(Dz, INFINITY), hi(Dz, -INFINITY);
                        for (std::size_t t = 0; t < static_cast<std::size_t>(lps); ++t) {
                            for (std::size_t d = 0; d < Dz; ++d) {
                                const float x = keys[((p * boxes + b) * static_cast<std::size_t>(lps) + t) * Dz + d];
                                lo[d] = std::min(lo[d], x);
                                hi[d] = std::max(hi[d], x);
                            }
                        }
                        if (bits == 32) {
                            std::memcpy(page + b * values * 4, lo.data(), Dz * 4);
                            std::memcpy(page + b * values * 4 + Dz * 4, hi.data(), Dz * 4);
                        } else if (bits == 16) {
                            auto* out = reinterpret_cast<std::uint16_t*>(page) + b * values;
                            for (std::size_t d = 0; d < Dz; ++d) {
                                out[d] = inf::bf16_round_down(lo[d]);
                                out[Dz + d] = inf::bf16_round_up(hi[d]);
                            }
                        } else {
                            inf::encode_int8_box(lo.data(), hi.data(), D, reinterpret_cast<std::int8_t*>(page) + b * values,
                                                 reinterpret_cast<float*>(page + boxes * values) + b);
                        }
                    }
                }
                inf_kv_layer layer{};
                layer.summary = storage.data();
                layer.kv_heads = heads;
                layer.head_dim = D;
                layer.page_size = page_size;
                layer.logical_page_size = lps;
                layer.pages = pages;
                layer.summary_bits = bits;
                std::vector<float> q(static_cast<std::size_t>(G) * Dz);
                for (auto& x : q) x = normal(rng);
                std::vector<float> out(G);
                for (int p = 0; p < pages; ++p) {
                    for (int h = 0; h < heads; ++h) {
                        for (int sub = 0; sub < subs; ++sub) {
                            inf::cpu::score_logical_page(layer, p, h, sub, q.data(), G, out.data());
                            const std::size_t b = static_cast<std::size_t>(h * subs + sub);
                            const unsigned char* page = base + static_cast<std::size_t>(p) * page_bytes;
                            for (int g = 0; g < G; ++g) {
                                const float* qg = q.data() + static_cast<std::size_t>(g) * Dz;
                                double best = -INFINITY, bound = 0.0, magnitude = 0.0, codes_sum = 0.0, box_scale = 0.0, q_max = 0.0;
                                for (std::size_t t = 0; t < static_cast<std::size_t>(lps); ++t) {
                                    const float* key = keys.data() + ((static_cast<std::size_t>(p) * boxes + b) * static_cast<std::size_t>(lps) + t) * Dz;
                                    double dot = 0.0;
                                    for (std::size_t d = 0; d < Dz; ++d) dot += double{qg[d]} * key[d];
                                    best = std::max(best, dot);
                                }
                                for (std::size_t d = 0; d < Dz; ++d) {
                                    double mn = 0.0, mx = 0.0;
                                    if (bits == 32) {
                                        mn = reinterpret_cast<const float*>(page)[b * values + d];
                                        mx = reinterpret_cast<const float*>(page)[b * values + Dz + d];
                                    } else if (bits == 16) {
                                        mn = inf::bf16_to_f32(reinterpret_cast<const std::uint16_t*>(page)[b * values + d]);
                                        mx = inf::bf16_to_f32(reinterpret_cast<const std::uint16_t*>(page)[b * values + Dz + d]);
                                    } else {
                                        const double scale = reinterpret_cast<const float*>(page + boxes * values)[b];
                                        const int lo_code = reinterpret_cast<const std::int8_t*>(page)[b * values + d];
                                        const int hi_code = reinterpret_cast<const std::int8_t*>(page)[b * values + Dz + d];
                                        mn = lo_code * scale;
                                        mx = hi_code * scale;
                                        codes_sum += std::abs(lo_code) + std::abs(hi_code);
                                        box_scale = scale;
                                    }
                                    q_max = std::max(q_max, std::fabs(double{qg[d]}));
                                    bound += std::max(qg[d] * mn, qg[d] * mx);
                                    magnitude += std::fabs(qg[d]) * std::max(std::fabs(mn), std::fabs(mx));
                                }
                                const double slack = 1e-5 * magnitude;  // float32 summation of D terms
                                ASSERT_GE(bound, best);
                                ASSERT_GE(double{out[static_cast<std::size_t>(g)]}, best - slack) << "page " << p << " head " << h << " sub " << sub;
                                if (bits == 8 && inf::cpu::page_select_quantises_query(D, bits)) {
                                    // Byte dot products: still the decoded box's bound or above, by at most one
                                    // quantisation step of the query (max |q| / 127) per code.
                                    const double allowance = q_max / 127.0 * box_scale * codes_sum;
                                    ASSERT_GE(double{out[static_cast<std::size_t>(g)]}, bound - slack) << "page " << p << " head " << h << " sub " << sub;
                                    ASSERT_LE(double{out[static_cast<std::size_t>(g)]}, bound + allowance + slack) << "page " << p << " head " << h << " sub " << sub;
                                } else {
                                    ASSERT_NEAR(double{out[static_cast<std::size_t>(g)]}, bound, slack) << "page " << p << " head " << h << " sub " << sub;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

// ---- the GQA decode kernel (tiles of <= 8 query vectors: one row's heads read each K/V row once) ----

// Every group size the kernel's head blocking distinguishes (1, a partial pass of 3, 4, 8; 2 rows of G 3
// fill 6 of 8), head dims on and off the SIMD widths (tails of 8 and 24 lanes, bf16 rows that are not
// whole 2W chunks), every storage type, ragged lengths ending mid-page and mid-block, page sizes below
// and above the kernel's 64-key block, shuffled page ids with explicit positions.
TEST(CpuAttention, GqaDecodeKernelMatchesReference) {
    unsigned seed = 2000;
    for (const int group : {1, 3, 4, 8}) {
        for (const int head_dim : {24, 40, 64, 72, 128, 200}) {
            for (const inf_dtype dtype : kDtypes) {
                Spec s;
                s.dtype = dtype;
                s.kv_heads = 2;
                s.q_heads = 2 * group;
                s.head_dim = head_dim;
                s.page_size = (seed % 3 == 0) ? 16 : (seed % 3 == 1 ? 64 : 128);
                s.kv_lengths = {1, 5, 97, 64, 300, 129};
                s.rows = {1, 1, 1, 1, group <= 4 ? 2 : 1, 1};
                s.explicit_positions = seed % 2 == 0;
                s.seed = seed++;
                check_all_levels(Scenario(s), describe(s) + " gqa decode");
            }
        }
    }
}

// Per-KV-head page lists (reversed, sparse, one empty), Λ streaming heads whose band cuts 64-key blocks,
// and long lists split across threads (parts wholly hidden merge as -inf).
TEST(CpuAttention, GqaDecodeKernelListsStreamingAndSplit) {
    unsigned seed = 2100;
    for (const inf_dtype dtype : kDtypes) {
        for (const int head_dim : {64, 128}) {
            Spec lists;
            lists.dtype = dtype;
            lists.kv_heads = 2;
            lists.q_heads = 8;
            lists.head_dim = head_dim;
            lists.page_size = 64;
            lists.kv_lengths = {1000, 130, 64};
            lists.rows = {1, 1, 1};
            lists.per_head = true;
            lists.explicit_positions = true;
            lists.seed = seed++;
            check_all_levels(Scenario(lists), describe(lists) + " gqa decode, per-head lists");

            Spec stream = lists;
            stream.per_head = false;
            stream.streaming = {1, 0};
            stream.sink = 7;
            stream.local = 90;
            stream.seed = seed++;
            check_all_levels(Scenario(stream), describe(stream) + " gqa decode, streaming");

            Spec split;
            split.dtype = dtype;
            split.kv_heads = 2;
            split.q_heads = 16;
            split.head_dim = head_dim;
            split.page_size = 64;
            split.kv_lengths = {5000};  // ends mid-page
            split.rows = {1};
            split.streaming = {0, 1};
            split.sink = 64;
            split.local = 200;
            split.seed = seed++;
            const Scenario scenario(split);
            if (inf::ThreadPool::instance().threads() > 1) {
                EXPECT_GT(inf::cpu::attention_workspace_bytes(scenario.params(nullptr, nullptr)), 0U);
            }
            check_all_levels(scenario, describe(split) + " gqa decode, split");
        }
    }
}

// Prefill tiles convert K/V blocks through the same row loaders: head dims that leave a partial SIMD
// vector, every storage type, chunks ending mid-page.
TEST(CpuAttention, PrefillOddHeadDimsThroughRowLoaders) {
    unsigned seed = 2200;
    for (const int head_dim : {8, 24, 40, 200}) {
        for (const inf_dtype dtype : kDtypes) {
            Spec s;
            s.dtype = dtype;
            s.kv_heads = 2;
            s.q_heads = 6;
            s.head_dim = head_dim;
            s.page_size = 16;
            s.kv_lengths = {91, 20};
            s.rows = {37, 20};
            s.seed = seed++;
            check_all_levels(Scenario(s), describe(s) + " prefill");
        }
    }
}

// int8 KV against the float32 keys and values it quantised: the scores move by at most
// scale * sum_i |q_i| * step_i / 2 (step = max|k| / 127 <= 1 / 127 here, |q| <= 2, so <= sqrt(D) / 127 ~ 0.09
// at D = 128 in the worst case, ~100x less on random signs), and the outputs by the value steps plus that.
// Decode and prefill, per-head lists, streaming heads and a split long decode, at every ISA level; each
// also matches the float64 reference over the dequantised cache at the f32 tolerance (check_all_levels).
TEST(CpuAttention, Int8CacheStaysCloseToTheFloatInputs) {
    unsigned seed = 2300;
    for (const int head_dim : {64, 128}) {
        Spec decode;
        decode.dtype = INF_DTYPE_I8;
        decode.kv_heads = 2;
        decode.q_heads = 8;
        decode.head_dim = head_dim;
        decode.page_size = 64;
        decode.kv_lengths = {1000, 130, 64};
        decode.rows = {1, 1, 1};
        Spec lists = decode;
        lists.per_head = true;
        lists.explicit_positions = true;
        Spec stream = decode;
        stream.streaming = {1, 0};
        stream.sink = 7;
        stream.local = 90;
        Spec split = decode;
        split.q_heads = 16;
        split.kv_lengths = {5000};
        split.rows = {1};
        split.streaming = {0, 1};
        split.sink = 64;
        split.local = 200;
        Spec prefill = decode;
        prefill.page_size = 16;
        prefill.kv_lengths = {150, 45};
        prefill.rows = {33, 45};
        for (Spec s : {decode, lists, stream, split, prefill}) {
            s.seed = seed++;
            const Scenario scenario(s);
            check_all_levels(scenario, describe(s) + " i8 vs dequantised");
            const auto original = scenario.original_reference();
            double worst = 0.0;
            for (const Isa isa : isa_levels()) {
                ForceIsa force(isa);
                const Output out = run_attention(scenario.params(nullptr, nullptr));
                EXPECT_TRUE(matches(out.o, out.lse, original, head_dim, 3e-2)) << describe(s) << " isa " << inf::cpu::isa_name(isa);
                for (std::size_t i = 0; i < original.o.size(); ++i) {
                    worst = std::max(worst, std::fabs(double{out.o[i]} - original.o[i]));
                }
            }
            // Not equal to the float inputs either: quantisation happened (a test that cannot fail otherwise).
            EXPECT_GT(worst, 1e-5) << describe(s);
        }
    }
}
