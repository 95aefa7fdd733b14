// Page pools with per-layer head counts (inf_page_pool_config.layer_kv_heads): bytes, appends and reads per
// layer (no layer overlaps another), summaries, copies, version-1 callers, and the refusals.
#include <cstddef>
#include <cstring>
#include <vector>

#include "test_util.h"

using inf_test::make_device;
using inf_test::make_pool;
using inf_test::Pool;
using inf_test::pool_config;
using inf_test::random_floats;

namespace {

constexpr std::int32_t kLayers = 3;
constexpr std::int32_t kHeads = 2;
constexpr std::int32_t kDim = 16;
constexpr std::int32_t kPage = 16;
constexpr std::int32_t kPages = 4;

inf_page_pool_config layered(inf_dtype dtype, std::int32_t logical, std::int32_t bits, const std::int32_t* heads) {
    inf_page_pool_config c = pool_config(dtype, kLayers, kHeads, kDim, kPage, kPages, logical);
    c.summary_bits = bits;
    c.layer_kv_heads = heads;
    return c;
}

std::uint64_t bytes_of(const Pool& pool) {
    std::uint64_t bytes = 0;
    EXPECT_OK(inf_page_pool_bytes(pool.get(), &bytes));
    return bytes;
}

}  // namespace

// Every (layer, head) costs the same bytes, so a pool of per-layer counts holds total heads / (layers *
// kv_heads) of a full pool's bytes, whatever the dtype and summary width.
TEST(PagePoolLayerHeads, BytesFollowTheHeadsOfEachLayer) {
    const auto device = make_device();
    const std::int32_t heads[kLayers] = {2, 0, 1};
    const struct {
        inf_dtype dtype;
        std::int32_t logical;
        std::int32_t bits;
    } shapes[] = {{INF_DTYPE_F32, 0, 0}, {INF_DTYPE_BF16, 8, 16}, {INF_DTYPE_F16, 4, 32}, {INF_DTYPE_I8, 8, 8}};
    for (const auto& shape : shapes) {
        const Pool full = make_pool(device.get(), layered(shape.dtype, shape.logical, shape.bits, nullptr));
        const Pool part = make_pool(device.get(), layered(shape.dtype, shape.logical, shape.bits, heads));
        EXPECT_EQ(bytes_of(part) * kLayers * kHeads, bytes_of(full) * 3) << "dtype " << shape.dtype;
        inf_page_pool_config out{};
        out.size = sizeof out;
        ASSERT_OK(inf_page_pool_get_config(part.get(), &out));
        ASSERT_NE(out.layer_kv_heads, nullptr);
        EXPECT_EQ(std::vector<std::int32_t>(out.layer_kv_heads, out.layer_kv_heads + kLayers),
                  std::vector<std::int32_t>(heads, heads + kLayers));
        ASSERT_OK(inf_page_pool_get_config(full.get(), &out));
        EXPECT_EQ(out.layer_kv_heads, nullptr);  // kv_heads in every layer reads as no array
    }
}

// Rows written to one layer read back from it alone: each layer's K, V and summaries have their own bytes.
TEST(PagePoolLayerHeads, AppendsAndReadsEachLayerApart) {
    const auto device = make_device();
    const std::int32_t heads[kLayers] = {1, 2, 1};
    const Pool pool = make_pool(device.get(), layered(INF_DTYPE_F32, 8, 32, heads));
    const std::vector<std::int32_t> pages(kPage, 2);
    std::vector<std::int32_t> slots(kPage);
    for (std::int32_t i = 0; i < kPage; ++i) slots[static_cast<std::size_t>(i)] = i;
    std::vector<std::vector<float>> k(kLayers), v(kLayers);
    for (std::int32_t l = 0; l < kLayers; ++l) {
        const auto count = static_cast<std::size_t>(kPage * heads[l] * kDim);
        k[static_cast<std::size_t>(l)] = random_floats(count, 900 + static_cast<std::uint32_t>(l), 2.0F);
        v[static_cast<std::size_t>(l)] = random_floats(count, 950 + static_cast<std::uint32_t>(l), 2.0F);
        ASSERT_OK(inf_page_pool_append(pool.get(), l, kPage, pages.data(), slots.data(), k[static_cast<std::size_t>(l)].data(),
                                       v[static_cast<std::size_t>(l)].data()));
    }
    for (std::int32_t l = 0; l < kLayers; ++l) {
        const auto count = static_cast<std::size_t>(kPage * heads[l] * kDim);
        std::vector<float> k_out(count + 1, std::numeric_limits<float>::quiet_NaN());
        std::vector<float> v_out(count + 1, std::numeric_limits<float>::quiet_NaN());
        ASSERT_OK(inf_page_pool_read_page(pool.get(), l, 2, k_out.data(), v_out.data()));
        // Read as [heads][page_size][head_dim]; appended as [tokens][heads][head_dim].
        for (std::int32_t h = 0; h < heads[l]; ++h) {
            for (std::int32_t t = 0; t < kPage; ++t) {
                for (std::int32_t d = 0; d < kDim; ++d) {
                    const std::size_t read = static_cast<std::size_t>((h * kPage + t) * kDim + d);
                    const std::size_t written = static_cast<std::size_t>((t * heads[l] + h) * kDim + d);
                    ASSERT_EQ(k_out[read], k[static_cast<std::size_t>(l)][written]) << "layer " << l;
                    ASSERT_EQ(v_out[read], v[static_cast<std::size_t>(l)][written]) << "layer " << l;
                }
            }
        }
        EXPECT_TRUE(std::isnan(k_out[count])) << "read past the layer's heads";
        // Summary of logical page 1 (slots 8..15) of the last head: the elementwise min and max of its keys.
        std::vector<float> summary(static_cast<std::size_t>(heads[l] * 2 * 2 * kDim));
        ASSERT_OK(inf_page_pool_read_summary(pool.get(), l, 2, summary.data()));
        const std::int32_t h = heads[l] - 1;
        for (std::int32_t d = 0; d < kDim; ++d) {
            float lo = std::numeric_limits<float>::infinity();
            float hi = -lo;
            for (std::int32_t t = 8; t < 16; ++t) {
                const float key = k[static_cast<std::size_t>(l)][static_cast<std::size_t>((t * heads[l] + h) * kDim + d)];
                lo = std::min(lo, key);
                hi = std::max(hi, key);
            }
            const std::size_t box = static_cast<std::size_t>((h * 2 + 1) * 2 * kDim);
            EXPECT_EQ(summary[box + static_cast<std::size_t>(d)], lo);
            EXPECT_EQ(summary[box + static_cast<std::size_t>(kDim + d)], hi);
        }
    }
    // Copies between pools of one layout move every layer's heads; other layouts are refused naming the layer.
    const Pool twin = make_pool(device.get(), layered(INF_DTYPE_F32, 8, 32, heads));
    const std::int32_t src = 2;
    const std::int32_t dst = 0;
    ASSERT_OK(inf_page_pool_copy_pages(twin.get(), &dst, pool.get(), &src, 1));
    std::vector<float> a(static_cast<std::size_t>(kPage * 2 * kDim)), b(a.size()), c(a.size()), d(a.size());
    for (std::int32_t l = 0; l < kLayers; ++l) {
        ASSERT_OK(inf_page_pool_read_page(pool.get(), l, 2, a.data(), b.data()));
        ASSERT_OK(inf_page_pool_read_page(twin.get(), l, 0, c.data(), d.data()));
        const auto count = static_cast<std::ptrdiff_t>(kPage * heads[l] * kDim);
        EXPECT_TRUE(std::equal(a.begin(), a.begin() + count, c.begin())) << "layer " << l;
        EXPECT_TRUE(std::equal(b.begin(), b.begin() + count, d.begin())) << "layer " << l;
    }
    const std::int32_t other[kLayers] = {1, 1, 1};
    const Pool unlike = make_pool(device.get(), layered(INF_DTYPE_F32, 8, 32, other));
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "config->layer_kv_heads[1] (1 vs 2)",
                 inf_page_pool_copy_pages(unlike.get(), &dst, pool.get(), &src, 1));
}

TEST(PagePoolLayerHeads, RefusesBadCountsAndEmptyLayers) {
    const auto device = make_device();
    inf_page_pool* pool = nullptr;
    const std::int32_t too_many[kLayers] = {2, 3, 1};
    inf_page_pool_config config = layered(INF_DTYPE_F32, 0, 0, too_many);
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "config->layer_kv_heads[1] (3) must be from 0 to config->kv_heads (2)",
                 inf_page_pool_create(device.get(), &config, &pool));
    const std::int32_t negative[kLayers] = {2, 1, -1};
    config.layer_kv_heads = negative;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "config->layer_kv_heads[2] (-1)", inf_page_pool_create(device.get(), &config, &pool));
    const std::int32_t none[kLayers] = {0, 0, 0};
    config.layer_kv_heads = none;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "config->layer_kv_heads is 0 in every layer",
                 inf_page_pool_create(device.get(), &config, &pool));
    EXPECT_EQ(pool, nullptr);

    // A layer without heads refuses appends, reads and attention.
    const std::int32_t heads[kLayers] = {2, 0, 1};
    const Pool part = make_pool(device.get(), layered(INF_DTYPE_F32, 8, 32, heads));
    const std::int32_t page = 0;
    const std::int32_t slot = 0;
    const auto k = random_floats(kHeads * kDim, 990, 1.0F);
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "layer (1) of the pool stores no KV heads (config->layer_kv_heads[1] is 0)",
                 inf_page_pool_append(part.get(), 1, 1, &page, &slot, k.data(), k.data()));
    std::vector<float> out(static_cast<std::size_t>(kHeads * kPage * kDim));
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "layer (1) of the pool stores no KV heads",
                 inf_page_pool_read_page(part.get(), 1, 0, out.data(), out.data()));

    // Page migration carries one head count for every layer: such a pool is refused on both ends.
    inf_comm_group* group = nullptr;
    ASSERT_OK(inf_comm_group_create(2, &group));
    inf_comm* a = nullptr;
    inf_comm* b = nullptr;
    ASSERT_OK(inf_comm_create_inproc(group, 0, &a));
    ASSERT_OK(inf_comm_create_inproc(group, 1, &b));
    EXPECT_ERROR(INF_STATUS_UNSUPPORTED, "pool stores per-layer KV head counts (config->layer_kv_heads)",
                 inf_page_pool_send_pages(a, 1, 5, part.get(), &page, 1));
    EXPECT_ERROR(INF_STATUS_UNSUPPORTED, "pool stores per-layer KV head counts (config->layer_kv_heads)",
                 inf_page_pool_recv_pages(b, 0, 5, part.get(), &page, 1));
    EXPECT_OK(inf_comm_destroy(a));
    EXPECT_OK(inf_comm_destroy(b));
    EXPECT_OK(inf_comm_group_destroy(group));
}

// A caller whose struct ends before layer_kv_heads gets kv_heads in every layer, whatever lies beyond its size.
TEST(PagePoolLayerHeads, EarlierCallersGetEveryHead) {
    const auto device = make_device();
    inf_page_pool_config config = layered(INF_DTYPE_F32, 8, 32, nullptr);
    const Pool full = make_pool(device.get(), config);
    const std::int32_t garbage[kLayers] = {-7, 99, 0};
    config.layer_kv_heads = garbage;
    config.size = offsetof(inf_page_pool_config, layer_kv_heads);
    const Pool old = make_pool(device.get(), config);
    EXPECT_EQ(bytes_of(old), bytes_of(full));
}
