// The CPU selector over int8 summaries of the shapes real models have (head_dim 64..256, 64-token pages of
// 16-token logical pages, GQA groups of 4 and 8): every score page_select leaves in its workspace is checked
// against the float64 bound of the decoded boxes, and every list against the top-k of those scores. These
// shapes take the whole-page VNNI kernels where the CPU has them, the per-head kernels elsewhere.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "attention/cpu_isa.h"
#include "isa_levels.h"
#include "attention/cpu_page_select.h"
#include "kv/page_pool.h"

namespace {

using inf::cpu::Isa;

using inf_test::ForceIsa;
using inf_test::isa_levels;

constexpr int kPage = 64;
constexpr int kLogical = 16;
constexpr int kSubs = kPage / kLogical;

// int8 summary pages built from random keys with per-dim scales 2^-3 .. 2^3 (outlier channels), as the
// pool stores them; plus the decoded boxes and each box's code magnitude for the allowance.
struct Summaries {
    int kv_heads;
    int D;
    int pages;
    std::size_t page_bytes;
    std::vector<float> storage;  // float-aligned bytes
    std::vector<float> lo, hi;   // decoded [page][head][sub][D]
    std::vector<float> scale;    // [page][head][sub]
    std::vector<double> codes_magnitude;  // sum_d max(|lo code|, |hi code|)

    Summaries(int kv_heads_, int D_, int pages_, std::mt19937& rng) : kv_heads(kv_heads_), D(D_), pages(pages_) {
        const std::size_t Dz = static_cast<std::size_t>(D);
        const std::size_t boxes = static_cast<std::size_t>(kv_heads * kSubs);
        page_bytes = boxes * (2 * Dz + 4);
        storage.assign(static_cast<std::size_t>(pages) * page_bytes / 4 + 1, 0.0F);
        lo.resize(static_cast<std::size_t>(pages) * boxes * Dz);
        hi.resize(lo.size());
        scale.resize(static_cast<std::size_t>(pages) * boxes);
        codes_magnitude.resize(scale.size());
        std::normal_distribution<float> normal(0.0F, 1.0F);
        std::uniform_int_distribution<int> exponent(-3, 3);
        std::vector<float> dim_scale(Dz);
        for (auto& s : dim_scale) s = std::ldexp(1.0F, exponent(rng));
        auto* base = reinterpret_cast<unsigned char*>(storage.data());
        std::vector<float> klo(Dz), khi(Dz);
        for (std::size_t p = 0; p < static_cast<std::size_t>(pages); ++p) {
            auto* codes = reinterpret_cast<std::int8_t*>(base + p * page_bytes);
            auto* scales = reinterpret_cast<float*>(base + p * page_bytes + boxes * 2 * Dz);
            for (std::size_t b = 0; b < boxes; ++b) {
                std::fill(klo.begin(), klo.end(), INFINITY);
                std::fill(khi.begin(), khi.end(), -INFINITY);
                for (int t = 0; t < kLogical; ++t) {
                    for (std::size_t d = 0; d < Dz; ++d) {
                        const float x = dim_scale[d] * normal(rng);
                        klo[d] = std::min(klo[d], x);
                        khi[d] = std::max(khi[d], x);
                    }
                }
                std::int8_t* box = codes + b * 2 * Dz;
                inf::encode_int8_box(klo.data(), khi.data(), D, box, scales + b);
                const std::size_t at = (p * boxes + b) * Dz;
                inf::decode_int8_box(box, scales[b], D, lo.data() + at, hi.data() + at);
                scale[p * boxes + b] = scales[b];
                double m = 0.0;
                for (std::size_t d = 0; d < Dz; ++d) m += std::max(std::abs(int{box[d]}), std::abs(int{box[Dz + d]}));
                codes_magnitude[p * boxes + b] = m;
            }
        }
    }

    // Makes box (page, head, sub) empty (as the pool leaves an unwritten logical page).
    void empty(int page, int head, int sub) {
        const std::size_t Dz = static_cast<std::size_t>(D);
        const std::size_t boxes = static_cast<std::size_t>(kv_heads * kSubs);
        const std::size_t b = static_cast<std::size_t>(head * kSubs + sub);
        std::vector<float> klo(Dz, INFINITY), khi(Dz, -INFINITY);
        auto* base = reinterpret_cast<unsigned char*>(storage.data()) + static_cast<std::size_t>(page) * page_bytes;
        auto* scales = reinterpret_cast<float*>(base + boxes * 2 * Dz);
        inf::encode_int8_box(klo.data(), khi.data(), D, reinterpret_cast<std::int8_t*>(base) + b * 2 * Dz, scales + b);
        const std::size_t i = static_cast<std::size_t>(page) * boxes + b;
        scale[i] = scales[b];
        std::fill_n(lo.begin() + static_cast<std::ptrdiff_t>(i * Dz), Dz, INFINITY);
        std::fill_n(hi.begin() + static_cast<std::ptrdiff_t>(i * Dz), Dz, -INFINITY);
        codes_magnitude[i] = 0.0;
    }

    inf_kv_layer layer() {
        inf_kv_layer l{};
        l.summary = storage.data();
        l.dtype = INF_DTYPE_F32;
        l.pages = pages;
        l.kv_heads = kv_heads;
        l.head_dim = D;
        l.page_size = kPage;
        l.logical_page_size = kLogical;
        l.summary_bits = 8;
        return l;
    }

    // The float64 bound of box (page, head, sub) for q, and the quantised selector's allowance above it.
    double bound(int page, int head, int sub, const float* q) const {
        const std::size_t at = ((static_cast<std::size_t>(page) * static_cast<std::size_t>(kv_heads) + static_cast<std::size_t>(head)) * kSubs +
                                static_cast<std::size_t>(sub)) * static_cast<std::size_t>(D);
        if (!(lo[at] <= hi[at])) return -INFINITY;  // empty
        double sum = 0.0;
        for (int d = 0; d < D; ++d) {
            sum += std::max(double{q[d]} * lo[at + static_cast<std::size_t>(d)], double{q[d]} * hi[at + static_cast<std::size_t>(d)]);
        }
        return sum;
    }
    double allowance(int page, int head, int sub, double q_max) const {
        const std::size_t i = (static_cast<std::size_t>(page) * static_cast<std::size_t>(kv_heads) + static_cast<std::size_t>(head)) * kSubs +
                              static_cast<std::size_t>(sub);
        return q_max / 127.0 * scale[i] * codes_magnitude[i];
    }
};

struct Case {
    int D;
    int kv_heads;
    int G;
    int per_query_head;
    bool skip_middle_head;
};

void run_case(const Case& c, Isa isa) {
    SCOPED_TRACE(::testing::Message() << inf::cpu::isa_name(isa) << " D " << c.D << " kv_heads " << c.kv_heads << " G " << c.G
                                      << " per_query_head " << c.per_query_head << " skip " << c.skip_middle_head);
    std::mt19937 rng(static_cast<std::uint32_t>(c.D * 131 + c.kv_heads * 17 + c.G * 3 + c.per_query_head));
    const int pages = 48;
    Summaries sum(c.kv_heads, c.D, pages, rng);
    sum.empty(7, 0, 2);  // one page scored head by head (an empty box inside used logical pages)
    const int q_heads = c.kv_heads * c.G;
    const std::size_t Dz = static_cast<std::size_t>(c.D);
    // Three sequences: 40 full pages; 30 pages ending mid-page (the last page uses 2 of 4 logical pages);
    // 12 pages whose query rows of head 0's group are zero (no quantisation step: the float fallback).
    const std::vector<std::int32_t> lengths{40 * kPage, 29 * kPage + 20, 12 * kPage};
    std::vector<std::int32_t> order(pages);
    std::iota(order.begin(), order.end(), 0);
    std::vector<std::int32_t> page_ids, page_positions, page_starts{0}, q_rows;
    for (std::size_t s = 0; s < lengths.size(); ++s) {
        std::shuffle(order.begin(), order.end(), rng);
        const int entries = (lengths[s] + kPage - 1) / kPage;
        for (int e = 0; e < entries; ++e) {
            page_ids.push_back(order[static_cast<std::size_t>(e)]);
            page_positions.push_back(e * kPage);
        }
        page_starts.push_back(static_cast<std::int32_t>(page_ids.size()));
        q_rows.push_back(static_cast<std::int32_t>(lengths.size() - 1 - s));  // rows out of order
    }
    std::normal_distribution<float> normal(0.0F, 1.0F);
    std::vector<float> q(lengths.size() * static_cast<std::size_t>(q_heads) * Dz);
    for (auto& x : q) x = normal(rng);
    // Sequence 2 reads row 0: zero its group-0 rows.
    std::fill_n(q.begin(), static_cast<std::size_t>(c.G) * Dz, 0.0F);
    std::vector<std::int32_t> skip(static_cast<std::size_t>(c.kv_heads), 0);
    if (c.skip_middle_head) skip[static_cast<std::size_t>(c.kv_heads / 2)] = 1;

    inf_page_select_params params{};
    params.layer = sum.layer();
    params.sequences = static_cast<std::int32_t>(lengths.size());
    params.q_heads = q_heads;
    params.q_dtype = INF_DTYPE_F32;
    params.budget_pages = 6;
    params.per_query_head = c.per_query_head;
    params.q = q.data();
    params.q_rows = q_rows.data();
    params.kv_lengths = lengths.data();
    params.page_starts = page_starts.data();
    params.page_ids = page_ids.data();
    params.page_positions = page_positions.data();
    params.skip_kv_heads = c.skip_middle_head ? skip.data() : nullptr;
    const int lists = c.per_query_head != 0 ? q_heads : c.kv_heads;
    std::vector<std::int32_t> starts(lengths.size() * static_cast<std::size_t>(lists) + 1, -7);
    std::vector<std::int32_t> indices(lengths.size() * static_cast<std::size_t>(lists * params.budget_pages), -7);
    params.head_page_starts = starts.data();
    params.head_page_indices = indices.data();
    const std::uint64_t bytes = inf::cpu::page_select_workspace_bytes(params);
    std::vector<float> workspace(bytes / 4 + 1, std::numeric_limits<float>::quiet_NaN());  // poisoned
    params.workspace = workspace.data();
    params.workspace_bytes = bytes;
    inf::cpu::page_select(params);

    int widest = 0;
    for (std::size_t s = 0; s < lengths.size(); ++s) widest = std::max(widest, page_starts[s + 1] - page_starts[s]);
    const std::size_t Gz = static_cast<std::size_t>(c.G);
    const std::size_t Wz = static_cast<std::size_t>(widest);
    for (std::size_t s = 0; s < lengths.size(); ++s) {
        const int first = page_starts[s];
        const int entries = page_starts[s + 1] - first;
        for (int h = 0; h < c.kv_heads; ++h) {
            if (skip[static_cast<std::size_t>(h)] != 0) {
                for (int l = 0; l < lists; ++l) {
                    const int kv_head = c.per_query_head != 0 ? l / c.G : l;
                    if (kv_head == h) {
                        const std::size_t list = s * static_cast<std::size_t>(lists) + static_cast<std::size_t>(l);
                        EXPECT_EQ(starts[list + 1], starts[list]) << "a skipped head's list is empty";
                    }
                }
                continue;
            }
            const float* scores = workspace.data() + (s * static_cast<std::size_t>(c.kv_heads) + static_cast<std::size_t>(h)) * Wz * Gz;
            std::vector<std::vector<double>> reference(Gz, std::vector<double>(static_cast<std::size_t>(entries)));
            for (int g = 0; g < c.G; ++g) {
                const float* qg = q.data() + (static_cast<std::size_t>(q_rows[s]) * static_cast<std::size_t>(q_heads) +
                                              static_cast<std::size_t>(h * c.G + g)) * Dz;
                double q_max = 0.0, q_norm = 0.0;
                for (std::size_t d = 0; d < Dz; ++d) {
                    q_max = std::max(q_max, std::fabs(double{qg[d]}));
                    q_norm += std::fabs(double{qg[d]});
                }
                for (int e = 0; e < entries; ++e) {
                    const int page = page_ids[static_cast<std::size_t>(first + e)];
                    const int valid = std::min(kPage, lengths[s] - e * kPage);
                    const int used = (valid + kLogical - 1) / kLogical;
                    double ref = -INFINITY, allow = 0.0, largest = 0.0;  // largest: the largest |decoded value|
                    for (int sub = 0; sub < used; ++sub) {
                        ref = std::max(ref, sum.bound(page, h, sub, qg));
                        allow = std::max(allow, sum.allowance(page, h, sub, q_max));
                        const float box_scale = sum.scale[(static_cast<std::size_t>(page) * static_cast<std::size_t>(c.kv_heads) +
                                                           static_cast<std::size_t>(h)) * kSubs + static_cast<std::size_t>(sub)];
                        if (std::isfinite(box_scale)) largest = std::max(largest, 127.0 * box_scale);
                    }
                    reference[static_cast<std::size_t>(g)][static_cast<std::size_t>(e)] = ref;
                    if (c.per_query_head == 0) continue;  // slot 0 then holds the group's best; checked below
                    const double got = scores[static_cast<std::size_t>(e) * Gz + static_cast<std::size_t>(g)];
                    const double slack = 1e-5 * q_norm * largest;  // float32 sums of D terms
                    ASSERT_GE(got, ref - slack) << "s " << s << " h " << h << " g " << g << " entry " << e;
                    ASSERT_LE(got, ref + allow + slack) << "s " << s << " h " << h << " g " << g << " entry " << e;
                }
            }
            // Lists: the forced newest entry, then the best by the kernel's scores (ties to the lower entry).
            for (int g = 0; g < (c.per_query_head != 0 ? c.G : 1); ++g) {
                std::vector<float> row(static_cast<std::size_t>(entries));
                for (int e = 0; e < entries; ++e) {
                    const float* at = scores + static_cast<std::size_t>(e) * Gz;
                    row[static_cast<std::size_t>(e)] = c.per_query_head != 0 ? at[g] : at[0];
                    if (c.per_query_head == 0) {
                        double best_ref = -INFINITY;
                        for (int gg = 0; gg < c.G; ++gg) best_ref = std::max(best_ref, reference[static_cast<std::size_t>(gg)][static_cast<std::size_t>(e)]);
                        ASSERT_GE(double{at[0]}, best_ref - 1e-3 * std::fabs(best_ref) - 1e-6) << "group best, entry " << e;
                    }
                }
                const int forced = entries - 1;
                std::vector<int> rank;
                for (int e = 0; e < entries; ++e) {
                    if (e != forced) rank.push_back(e);
                }
                std::stable_sort(rank.begin(), rank.end(), [&](int a, int b) { return row[static_cast<std::size_t>(a)] > row[static_cast<std::size_t>(b)]; });
                std::vector<std::int32_t> want{forced};
                for (int i = 0; i + 1 < params.budget_pages && i < static_cast<int>(rank.size()); ++i) want.push_back(rank[static_cast<std::size_t>(i)]);
                std::sort(want.begin(), want.end());
                const int l = c.per_query_head != 0 ? h * c.G + g : h;
                const std::size_t list = s * static_cast<std::size_t>(lists) + static_cast<std::size_t>(l);
                const std::vector<std::int32_t> got(indices.begin() + starts[list], indices.begin() + starts[list + 1]);
                EXPECT_EQ(got, want) << "s " << s << " list " << l;
            }
        }
    }
}

TEST(PageSelectInt8, ScoresBoundTheDecodedBoxesAndListsAreTheirTopK) {
    for (const Isa isa : isa_levels()) {
        ForceIsa force(isa);
        for (const int D : {64, 128, 192, 256}) {
            run_case({D, 3, 4, 1, false}, isa);
            run_case({D, 2, 8, 1, true}, isa);
        }
        run_case({128, 3, 4, 0, false}, isa);
        run_case({128, 4, 8, 0, true}, isa);
        run_case({128, 2, 3, 1, false}, isa);  // a group the whole-page kernel does not take
    }
}

}  // namespace
