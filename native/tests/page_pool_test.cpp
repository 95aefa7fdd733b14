// inf_page_pool_*: creation and its config checks, append / read round trips in every dtype, summaries,
// copies between pools, live-object counts, and every error path with the argument it names.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "test_util.h"

using inf_test::Device;
using inf_test::live_objects;
using inf_test::make_device;
using inf_test::make_pool;
using inf_test::Pool;
using inf_test::pool_config;

namespace {

constexpr float kMaxMagnitude = 2.0F;  // of the random keys and values

inf_page_pool_config small_config(inf_dtype dtype = INF_DTYPE_F32) {
    return pool_config(dtype, /*layers=*/2, /*kv_heads=*/2, /*head_dim=*/16, /*page_size=*/16, /*pages=*/6,
                       /*logical_page_size=*/4);
}

// Random values in [-2, -0.05] U [0.05, 2]: never zero, of both signs.
std::vector<float> random_floats(std::size_t count, std::uint32_t seed) {
    return inf_test::random_floats(count, seed, kMaxMagnitude);
}

// Relative rounding bound of storing a float32 in dtype (half an ulp).
float tolerance(inf_dtype dtype) {
    switch (dtype) {
        case INF_DTYPE_F16: return 0x1p-11F;
        case INF_DTYPE_BF16: return 0x1p-8F;
        default: return 0.0F;
    }
}

std::size_t page_floats(const inf_page_pool_config& c) {
    return static_cast<std::size_t>(c.kv_heads) * static_cast<std::size_t>(c.page_size) *
           static_cast<std::size_t>(c.head_dim);
}

struct PageData {
    std::vector<float> k;
    std::vector<float> v;
};

PageData read_page(const inf_page_pool* pool, const inf_page_pool_config& c, int32_t layer, int32_t page) {
    PageData data{std::vector<float>(page_floats(c), std::numeric_limits<float>::quiet_NaN()),
                  std::vector<float>(page_floats(c), std::numeric_limits<float>::quiet_NaN())};
    EXPECT_OK(inf_page_pool_read_page(pool, layer, page, data.k.data(), data.v.data()));
    return data;
}

std::vector<float> read_summary(const inf_page_pool* pool, const inf_page_pool_config& c, int32_t layer, int32_t page) {
    std::vector<float> summary(static_cast<std::size_t>(c.kv_heads) *
                                   static_cast<std::size_t>(c.page_size / c.logical_page_size) * 2 *
                                   static_cast<std::size_t>(c.head_dim),
                               std::numeric_limits<float>::quiet_NaN());
    EXPECT_OK(inf_page_pool_read_summary(pool, layer, page, summary.data()));
    return summary;
}

}  // namespace

TEST(PagePool, CreateDescribeDestroy) {
    Device device = make_device();
    for (inf_dtype dtype : {INF_DTYPE_F32, INF_DTYPE_F16, INF_DTYPE_BF16, INF_DTYPE_I8}) {
        const inf_page_pool_config config = small_config(dtype);
        Pool pool = make_pool(device.get(), config);
        ASSERT_NE(pool, nullptr);
        inf_page_pool_config read{};
        read.size = sizeof read;
        ASSERT_OK(inf_page_pool_get_config(pool.get(), &read));
        EXPECT_EQ(0, std::memcmp(&read, &config, sizeof read));
        uint64_t bytes = 0;
        ASSERT_OK(inf_page_pool_bytes(pool.get(), &bytes));
        const uint64_t element = dtype == INF_DTYPE_F32 ? 4 : dtype == INF_DTYPE_I8 ? 1 : 2;
        const uint64_t kv = 2ULL * 2 * 6 * 2 * 16 * 16 * element;      // K+V, layers, pages, heads, slots, dim
        const uint64_t summary = 2ULL * 6 * 2 * (16 / 4) * 2 * 16 * 4;  // layers, pages, heads, logical, min/max, dim
        const uint64_t scales = dtype == INF_DTYPE_I8 ? 2ULL * 2 * 6 * 2 * 16 * 4 : 0;  // K+V, layers, pages, heads, slots
        EXPECT_EQ(bytes, kv + scales + summary) << "dtype " << static_cast<int>(dtype);
    }
    inf_page_pool_config no_summaries = small_config();
    no_summaries.logical_page_size = 0;
    Pool pool = make_pool(device.get(), no_summaries);
    uint64_t bytes = 0;
    ASSERT_OK(inf_page_pool_bytes(pool.get(), &bytes));
    EXPECT_EQ(bytes, 2ULL * 2 * 6 * 2 * 16 * 16 * 4);
}

TEST(PagePool, AcceptsTheLimitsOfEveryField) {
    Device device = make_device();
    inf_page_pool_config config = small_config();
    config.head_dim = 256;
    config.page_size = 256;
    config.logical_page_size = 1;
    config.pages = 1;
    config.layers = 1;
    Pool big = make_pool(device.get(), config);
    config.head_dim = 8;
    config.page_size = 16;
    config.logical_page_size = 16;
    Pool small = make_pool(device.get(), config);
}

TEST(PagePool, CreateErrors) {
    Device device = make_device();
    const inf_page_pool_config good = small_config();
    inf_page_pool* pool = reinterpret_cast<inf_page_pool*>(uintptr_t{0x1234});
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_page_pool_create: device is null", inf_page_pool_create(nullptr, &good, &pool));
    EXPECT_EQ(pool, nullptr);  // a failed create clears *out
    EXPECT_ERROR(INF_STATUS_INVALID_HANDLE, "inf_page_pool_create: device (",
                 inf_page_pool_create(reinterpret_cast<inf_device*>(uintptr_t{0x7FFFFFFFFFFFFF51}), &good, &pool));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_page_pool_create: config is null",
                 inf_page_pool_create(device.get(), nullptr, &pool));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_page_pool_create: out_pool is null",
                 inf_page_pool_create(device.get(), &good, nullptr));
    inf_page_pool_config config = good;
    config.size = 8;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "config->size (8) is smaller than sizeof(inf_page_pool_config) (32)",
                 inf_page_pool_create(device.get(), &config, &pool));

    struct Case {
        void (*edit)(inf_page_pool_config&);
        const char* message;
    };
    const Case cases[] = {
        {[](inf_page_pool_config& c) { const int32_t bad = 4; std::memcpy(&c.dtype, &bad, sizeof bad); },
         "inf_page_pool_create: config->dtype (4) is not an inf_dtype (INF_DTYPE_F32 = 0, INF_DTYPE_F16 = 1, "
         "INF_DTYPE_BF16 = 2, INF_DTYPE_I8 = 3)"},
        {[](inf_page_pool_config& c) { const int32_t bad = -1; std::memcpy(&c.dtype, &bad, sizeof bad); },
         "config->dtype (-1) is not an inf_dtype"},
        {[](inf_page_pool_config& c) { c.layers = 0; }, "inf_page_pool_create: config->layers (0) must be at least 1"},
        {[](inf_page_pool_config& c) { c.layers = -3; }, "config->layers (-3) must be at least 1"},
        {[](inf_page_pool_config& c) { c.kv_heads = 0; }, "config->kv_heads (0) must be at least 1"},
        {[](inf_page_pool_config& c) { c.head_dim = 0; }, "config->head_dim (0) must be a multiple of 8 from 8 to 256"},
        {[](inf_page_pool_config& c) { c.head_dim = 12; }, "config->head_dim (12) must be a multiple of 8"},
        {[](inf_page_pool_config& c) { c.head_dim = 264; }, "config->head_dim (264) must be a multiple of 8 from 8 to 256"},
        {[](inf_page_pool_config& c) { c.page_size = 48; },
         "inf_page_pool_create: config->page_size (48) must be a power of two from 16 to 256"},
        {[](inf_page_pool_config& c) { c.page_size = 8; }, "config->page_size (8) must be a power of two from 16 to 256"},
        {[](inf_page_pool_config& c) { c.page_size = 512; }, "config->page_size (512) must be a power of two"},
        {[](inf_page_pool_config& c) { c.page_size = -16; }, "config->page_size (-16) must be a power of two"},
        {[](inf_page_pool_config& c) { c.pages = 0; }, "config->pages (0) must be at least 1"},
        {[](inf_page_pool_config& c) { c.logical_page_size = 3; },
         "config->logical_page_size (3) must be 0 (no summaries) or a power of two dividing config->page_size (16)"},
        {[](inf_page_pool_config& c) { c.logical_page_size = 32; }, "config->logical_page_size (32) must be 0"},
        {[](inf_page_pool_config& c) { c.logical_page_size = -4; }, "config->logical_page_size (-4) must be 0"},
    };
    for (const Case& c : cases) {
        config = good;
        c.edit(config);
        pool = reinterpret_cast<inf_page_pool*>(uintptr_t{0x1234});
        EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, c.message, inf_page_pool_create(device.get(), &config, &pool));
        EXPECT_EQ(pool, nullptr) << c.message;
    }
    EXPECT_EQ(live_objects().page_pools, 0);
}

TEST(PagePool, SizeOverflowAndOutOfMemory) {
    Device device = make_device();
    inf_page_pool_config config = small_config();
    config.kv_heads = 1 << 20;
    config.head_dim = 256;
    config.page_size = 256;
    config.pages = std::numeric_limits<int32_t>::max();
    inf_page_pool* pool = nullptr;
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "overflows 64 bits", inf_page_pool_create(device.get(), &config, &pool));
    EXPECT_EQ(pool, nullptr);
    // 2 layers * 2 (K, V) * 2^20 pages * 2 heads * 16 * 16 * 4 bytes = 8 TiB: more than this machine has.
    config = small_config();
    config.pages = 1 << 30;
    EXPECT_ERROR(INF_STATUS_OUT_OF_MEMORY, "does not fit on cpu:0", inf_page_pool_create(device.get(), &config, &pool));
    EXPECT_EQ(pool, nullptr);
    EXPECT_EQ(live_objects().page_pools, 0);
}

TEST(PagePool, HandleErrors) {
    Device device = make_device();
    Pool pool = make_pool(device.get(), small_config());
    inf_page_pool_config config{};
    config.size = sizeof config;
    uint64_t bytes = 0;
    EXPECT_OK(inf_page_pool_destroy(nullptr));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_page_pool_get_config: pool is null", inf_page_pool_get_config(nullptr, &config));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_page_pool_get_config: out_config is null",
                 inf_page_pool_get_config(pool.get(), nullptr));
    config.size = 4;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "out_config->size (4) is smaller than sizeof(inf_page_pool_config)",
                 inf_page_pool_get_config(pool.get(), &config));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_page_pool_bytes: pool is null", inf_page_pool_bytes(nullptr, &bytes));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_page_pool_bytes: out_bytes is null", inf_page_pool_bytes(pool.get(), nullptr));
    // A device handle is not a pool handle, and a pool handle is not a buffer or device handle.
    EXPECT_ERROR(INF_STATUS_INVALID_HANDLE, "is a device handle, not a page pool handle",
                 inf_page_pool_bytes(reinterpret_cast<inf_page_pool*>(device.get()), &bytes));
    EXPECT_ERROR(INF_STATUS_INVALID_HANDLE, "is a page pool handle, not a buffer handle",
                 inf_buffer_size(reinterpret_cast<inf_buffer*>(pool.get()), &bytes));
    EXPECT_ERROR(INF_STATUS_INVALID_HANDLE, "is a page pool handle, not a device handle",
                 inf_device_destroy(reinterpret_cast<inf_device*>(pool.get())));
    inf_page_pool* raw = pool.release();
    EXPECT_OK(inf_page_pool_destroy(raw));
    EXPECT_ERROR(INF_STATUS_INVALID_HANDLE, "inf_page_pool_destroy: pool (", inf_page_pool_destroy(raw));
    EXPECT_ERROR(INF_STATUS_INVALID_HANDLE, "is not a live page pool handle", inf_page_pool_bytes(raw, &bytes));
}

TEST(PagePool, LiveObjectsAndDeviceLifetime) {
    const inf_live_objects start = live_objects();
    inf_device* device = nullptr;
    ASSERT_OK(inf_device_create(INF_DEVICE_KIND_CPU, 0, &device));
    const inf_page_pool_config config = small_config();
    inf_page_pool* first = nullptr;
    inf_page_pool* second = nullptr;
    ASSERT_OK(inf_page_pool_create(device, &config, &first));
    ASSERT_OK(inf_page_pool_create(device, &config, &second));
    EXPECT_EQ(live_objects().page_pools, start.page_pools + 2);
    EXPECT_EQ(live_objects().buffers, start.buffers);  // pools are not buffers
    ASSERT_OK(inf_device_destroy(device));             // the pools keep the device alive
    EXPECT_EQ(live_objects().devices, start.devices);
    const std::vector<float> k = random_floats(2 * 16, 1);
    const int32_t page = 1;
    const int32_t slot = 0;
    EXPECT_OK(inf_page_pool_append(first, 1, 1, &page, &slot, k.data(), k.data()));
    ASSERT_OK(inf_page_pool_destroy(first));
    EXPECT_EQ(live_objects().page_pools, start.page_pools + 1);
    ASSERT_OK(inf_page_pool_destroy(second));
    EXPECT_EQ(live_objects().page_pools, start.page_pools);
}

TEST(PagePool, LiveObjectsVersionOneCallersGetWhatTheyKnow) {
    Device device = make_device();
    Pool pool = make_pool(device.get(), small_config());
    inf_live_objects objects;
    std::memset(&objects, 0x5A, sizeof objects);
    objects.size = offsetof(inf_live_objects, page_pools);  // built against the first version
    ASSERT_OK(inf_get_live_objects(&objects));
    EXPECT_EQ(objects.devices, 1);
    EXPECT_EQ(objects.page_pools, 0x5A5A5A5A5A5A5A5A);  // beyond its size: untouched
    objects.size = sizeof objects;
    ASSERT_OK(inf_get_live_objects(&objects));
    EXPECT_EQ(objects.page_pools, 1);
}

TEST(PagePool, FreshPoolReadsZerosAndEmptySummaries) {
    Device device = make_device();
    const inf_page_pool_config config = small_config(INF_DTYPE_BF16);
    Pool pool = make_pool(device.get(), config);
    for (int32_t layer = 0; layer < config.layers; ++layer) {
        for (int32_t page = 0; page < config.pages; ++page) {
            const PageData data = read_page(pool.get(), config, layer, page);
            EXPECT_TRUE(std::all_of(data.k.begin(), data.k.end(), [](float x) { return x == 0.0F; }));
            EXPECT_TRUE(std::all_of(data.v.begin(), data.v.end(), [](float x) { return x == 0.0F; }));
            const std::vector<float> summary = read_summary(pool.get(), config, layer, page);
            for (std::size_t i = 0; i < summary.size(); ++i) {
                const bool is_max = (i / 16) % 2 == 1;
                EXPECT_EQ(summary[i], is_max ? -INFINITY : INFINITY) << "layer " << layer << " page " << page << " " << i;
            }
        }
    }
}

class PagePoolDtype : public ::testing::TestWithParam<inf_dtype> {};

TEST_P(PagePoolDtype, AppendReadRoundTrip) {
    Device device = make_device();
    const inf_dtype dtype = GetParam();
    const inf_page_pool_config config = small_config(dtype);
    Pool pool = make_pool(device.get(), config);
    const std::size_t row = static_cast<std::size_t>(config.kv_heads * config.head_dim);
    // Every slot of pages 1, 3 and 4 of layer 1, in a shuffled order, in three appends.
    std::vector<int32_t> pages;
    std::vector<int32_t> slots;
    for (int32_t page : {1, 3, 4}) {
        for (int32_t slot = 0; slot < config.page_size; ++slot) {
            pages.push_back(page);
            slots.push_back(slot);
        }
    }
    std::vector<std::size_t> order(pages.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::shuffle(order.begin(), order.end(), std::mt19937(7));
    std::vector<int32_t> shuffled_pages;
    std::vector<int32_t> shuffled_slots;
    for (std::size_t i : order) {
        shuffled_pages.push_back(pages[i]);
        shuffled_slots.push_back(slots[i]);
    }
    const std::size_t tokens = pages.size();
    const std::vector<float> k = random_floats(tokens * row, 11);
    const std::vector<float> v = random_floats(tokens * row, 12);
    const std::size_t split[] = {0, 5, 30, tokens};
    for (int part = 0; part < 3; ++part) {
        const std::size_t begin = split[part];
        const auto count = static_cast<int32_t>(split[part + 1] - begin);
        ASSERT_OK(inf_page_pool_append(pool.get(), 1, count, shuffled_pages.data() + begin, shuffled_slots.data() + begin,
                                       k.data() + begin * row, v.data() + begin * row));
    }
    const float tol = tolerance(dtype);
    // int8: the bound is absolute per row, half a step of its scale max|x| / 127 (plus float rounding).
    const auto row_step = [&](const std::vector<float>& x, std::size_t t, int32_t h) {
        float m = 0.0F;
        for (int32_t d = 0; d < config.head_dim; ++d) {
            m = std::max(m, std::fabs(x[t * row + static_cast<std::size_t>(h * config.head_dim + d)]));
        }
        return m / 127.0F;
    };
    for (std::size_t t = 0; t < tokens; ++t) {
        const int32_t page = shuffled_pages[t];
        const int32_t slot = shuffled_slots[t];
        const PageData data = read_page(pool.get(), config, 1, page);
        for (int32_t h = 0; h < config.kv_heads; ++h) {
            for (int32_t d = 0; d < config.head_dim; ++d) {
                const std::size_t stored =
                    (static_cast<std::size_t>(h) * static_cast<std::size_t>(config.page_size) + static_cast<std::size_t>(slot)) *
                        static_cast<std::size_t>(config.head_dim) + static_cast<std::size_t>(d);
                const std::size_t given = t * row + static_cast<std::size_t>(h * config.head_dim + d);
                if (dtype == INF_DTYPE_F32) {
                    ASSERT_EQ(data.k[stored], k[given]);
                    ASSERT_EQ(data.v[stored], v[given]);
                } else if (dtype == INF_DTYPE_I8) {
                    ASSERT_NEAR(data.k[stored], k[given], row_step(k, t, h) * (0.5F + 0x1p-16F)) << "token " << t;
                    ASSERT_NEAR(data.v[stored], v[given], row_step(v, t, h) * (0.5F + 0x1p-16F)) << "token " << t;
                } else {
                    ASSERT_NEAR(data.k[stored], k[given], std::fabs(k[given]) * tol) << "token " << t;
                    ASSERT_NEAR(data.v[stored], v[given], std::fabs(v[given]) * tol) << "token " << t;
                }
            }
        }
    }
    // Layer 0 and the other pages were not touched.
    const PageData untouched = read_page(pool.get(), config, 0, 1);
    EXPECT_TRUE(std::all_of(untouched.k.begin(), untouched.k.end(), [](float x) { return x == 0.0F; }));
    const PageData other = read_page(pool.get(), config, 1, 2);
    EXPECT_TRUE(std::all_of(other.v.begin(), other.v.end(), [](float x) { return x == 0.0F; }));
}

TEST_P(PagePoolDtype, SummariesAreMinMaxOfLogicalPagesAndRestartAtSlotZero) {
    Device device = make_device();
    const inf_dtype dtype = GetParam();
    const inf_page_pool_config config = small_config(dtype);
    Pool pool = make_pool(device.get(), config);
    const int32_t heads = config.kv_heads;
    const int32_t dim = config.head_dim;
    const int32_t logical = config.page_size / config.logical_page_size;
    const std::size_t row = static_cast<std::size_t>(heads * dim);
    // Slots 0..9 of page 2: logical pages 0 and 1 full, logical page 2 half, logical page 3 unwritten.
    const int32_t written = 10;
    std::vector<int32_t> pages(written, 2);
    std::vector<int32_t> slots(written);
    std::iota(slots.begin(), slots.end(), 0);
    std::vector<float> k = random_floats(written * row, 21);
    const std::vector<float> v = random_floats(written * row, 22);
    ASSERT_OK(inf_page_pool_append(pool.get(), 0, written, pages.data(), slots.data(), k.data(), v.data()));
    // The summaries cover the keys as stored.
    const PageData stored = read_page(pool.get(), config, 0, 2);
    const auto stored_key = [&](int32_t slot, int32_t h, int32_t d) {
        return stored.k[static_cast<std::size_t>((h * config.page_size + slot) * dim + d)];
    };
    std::vector<float> summary = read_summary(pool.get(), config, 0, 2);
    const auto at = [&](int32_t h, int32_t l, int32_t which, int32_t d) {
        return summary[static_cast<std::size_t>(((h * logical + l) * 2 + which) * dim + d)];
    };
    for (int32_t h = 0; h < heads; ++h) {
        for (int32_t l = 0; l < logical; ++l) {
            for (int32_t d = 0; d < dim; ++d) {
                float lo = INFINITY;
                float hi = -INFINITY;
                for (int32_t s = l * config.logical_page_size; s < std::min(written, (l + 1) * config.logical_page_size); ++s) {
                    lo = std::min(lo, stored_key(s, h, d));
                    hi = std::max(hi, stored_key(s, h, d));
                }
                ASSERT_EQ(at(h, l, 0, d), lo) << "head " << h << " logical " << l << " dim " << d;
                ASSERT_EQ(at(h, l, 1, d), hi) << "head " << h << " logical " << l << " dim " << d;
            }
        }
    }
    // Rewriting slot 4 (the first of logical page 1) restarts that summary from the new key alone; a
    // following write to slot 5 widens it again. Logical page 0 keeps its summary.
    const std::vector<float> fresh = random_floats(2 * row, 23);
    const int32_t fresh_pages[] = {2, 2};
    const int32_t fresh_slots[] = {4, 5};
    ASSERT_OK(inf_page_pool_append(pool.get(), 0, 1, fresh_pages, fresh_slots, fresh.data(), fresh.data()));
    const PageData after = read_page(pool.get(), config, 0, 2);
    std::vector<float> restarted = read_summary(pool.get(), config, 0, 2);
    for (int32_t h = 0; h < heads; ++h) {
        for (int32_t d = 0; d < dim; ++d) {
            const float key = after.k[static_cast<std::size_t>((h * config.page_size + 4) * dim + d)];
            ASSERT_EQ(restarted[static_cast<std::size_t>(((h * logical + 1) * 2 + 0) * dim + d)], key);
            ASSERT_EQ(restarted[static_cast<std::size_t>(((h * logical + 1) * 2 + 1) * dim + d)], key);
            ASSERT_EQ(restarted[static_cast<std::size_t>(((h * logical + 0) * 2 + 0) * dim + d)], at(h, 0, 0, d));
            ASSERT_EQ(restarted[static_cast<std::size_t>(((h * logical + 0) * 2 + 1) * dim + d)], at(h, 0, 1, d));
        }
    }
    ASSERT_OK(inf_page_pool_append(pool.get(), 0, 1, fresh_pages + 1, fresh_slots + 1, fresh.data() + row, fresh.data() + row));
    const PageData last = read_page(pool.get(), config, 0, 2);
    const std::vector<float> widened = read_summary(pool.get(), config, 0, 2);
    for (int32_t h = 0; h < heads; ++h) {
        for (int32_t d = 0; d < dim; ++d) {
            const float a = last.k[static_cast<std::size_t>((h * config.page_size + 4) * dim + d)];
            const float b = last.k[static_cast<std::size_t>((h * config.page_size + 5) * dim + d)];
            ASSERT_EQ(widened[static_cast<std::size_t>(((h * logical + 1) * 2 + 0) * dim + d)], std::min(a, b));
            ASSERT_EQ(widened[static_cast<std::size_t>(((h * logical + 1) * 2 + 1) * dim + d)], std::max(a, b));
        }
    }
}

INSTANTIATE_TEST_SUITE_P(AllDtypes, PagePoolDtype, ::testing::Values(INF_DTYPE_F32, INF_DTYPE_F16, INF_DTYPE_BF16, INF_DTYPE_I8),
                         [](const ::testing::TestParamInfo<inf_dtype>& param_info) {
                             return std::string(param_info.param == INF_DTYPE_F32   ? "F32"
                                                : param_info.param == INF_DTYPE_F16 ? "F16"
                                                : param_info.param == INF_DTYPE_I8  ? "I8"
                                                                                    : "BF16");
                         });

// int8 rows of magnitudes 1e-3 .. 1e3 (each row its own scale), an all-zero row and rows with one large
// outlier: every element within half a step of its row's scale, the row's largest element (code +-127)
// exact up to float rounding, zeros exact; rows never interfere (per-(token, head) scales).
TEST(PagePool, Int8RowsRoundTripWithinHalfAStepOfTheirScale) {
    Device device = make_device();
    inf_page_pool_config config = small_config(INF_DTYPE_I8);
    config.head_dim = 40;  // not a multiple of 16: the AVX-512 rows end in a partial vector
    Pool pool = make_pool(device.get(), config);
    const auto dim = static_cast<std::size_t>(config.head_dim);
    const std::size_t heads = static_cast<std::size_t>(config.kv_heads);
    const std::size_t row = heads * dim;
    const int32_t tokens = config.page_size;
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> exponent(-3.0F, 3.0F);
    std::vector<float> k = random_floats(static_cast<std::size_t>(tokens) * row, 51);
    std::vector<float> v = random_floats(static_cast<std::size_t>(tokens) * row, 52);
    for (std::size_t r = 0; r < static_cast<std::size_t>(tokens) * heads; ++r) {
        const float kscale = std::pow(10.0F, exponent(rng));
        const float vscale = std::pow(10.0F, exponent(rng));
        for (std::size_t d = 0; d < dim; ++d) {
            k[r * dim + d] *= kscale;
            v[r * dim + d] *= vscale;
        }
    }
    std::fill_n(k.begin() + 3 * static_cast<std::ptrdiff_t>(dim), dim, 0.0F);  // token 1, head 1: all zero
    std::fill_n(v.begin() + 4 * static_cast<std::ptrdiff_t>(dim), dim, 0.0F);  // token 2, head 0
    k[5 * dim + 7] = 1000.0F;  // token 2, head 1: one outlier, the rest ~1 rounds coarsely but within bound
    std::vector<int32_t> pages(static_cast<std::size_t>(tokens), 3);
    std::vector<int32_t> slots(static_cast<std::size_t>(tokens));
    std::iota(slots.begin(), slots.end(), 0);
    ASSERT_OK(inf_page_pool_append(pool.get(), 1, tokens, pages.data(), slots.data(), k.data(), v.data()));
    const PageData data = read_page(pool.get(), config, 1, 3);
    int exact_max = 0;
    for (std::size_t t = 0; t < static_cast<std::size_t>(tokens); ++t) {
        for (std::size_t h = 0; h < heads; ++h) {
            for (const auto& [given, stored, name] : {std::tuple{&k, &data.k, "k"}, std::tuple{&v, &data.v, "v"}}) {
                const float* x = given->data() + t * row + h * dim;
                const float* y = stored->data() + (h * static_cast<std::size_t>(config.page_size) + t) * dim;
                double m = 0.0;
                for (std::size_t d = 0; d < dim; ++d) {
                    m = std::max(m, std::fabs(static_cast<double>(x[d])));
                }
                const double step = m / 127.0;
                for (std::size_t d = 0; d < dim; ++d) {
                    const double error = std::fabs(static_cast<double>(y[d]) - static_cast<double>(x[d]));
                    ASSERT_LE(error, step * 0.5 + m * 0x1p-22) << name << " token " << t << " head " << h << " dim " << d;
                    if (x[d] == 0.0F) {
                        ASSERT_EQ(y[d], 0.0F) << name << " token " << t << " head " << h;
                    }
                    if (m > 0.0 && std::fabs(static_cast<double>(x[d])) == m) {
                        ASSERT_NEAR(std::fabs(static_cast<double>(y[d])), m, m * 0x1p-22) << name << " token " << t;
                        ++exact_max;
                    }
                }
            }
        }
    }
    EXPECT_GE(exact_max, 2 * tokens * config.kv_heads - 2);  // every row but the two all-zero ones
    // The outlier row: the small elements quantise to multiples of 1000 / 127 (most to 0), within bound.
    EXPECT_EQ(data.k[(static_cast<std::size_t>(config.page_size) + 2) * dim + 7], 1000.0F);
}

// int8 pools take float32 queries only: attention and page selection refuse any other q_dtype, naming it.
TEST(PagePool, Int8PoolRefusesNonF32Queries) {
    Device device = make_device();
    inf_page_pool_config config = small_config(INF_DTYPE_I8);
    Pool pool = make_pool(device.get(), config);
    const int32_t q_heads = config.kv_heads;
    inf_test::Buffer q = inf_test::make_buffer(device.get(), static_cast<uint64_t>(q_heads * config.head_dim) * 4);
    inf_test::Buffer o = inf_test::make_buffer(device.get(), static_cast<uint64_t>(q_heads * config.head_dim) * 4);
    inf_test::Buffer lse = inf_test::make_buffer(device.get(), static_cast<uint64_t>(q_heads) * 4);
    const int32_t q_starts[] = {0, 1};
    const int32_t q_positions[] = {3};
    const int32_t kv_lengths[] = {4};
    const int32_t page_starts[] = {0, 1};
    const int32_t page_ids[] = {0};
    for (inf_dtype q_dtype : {INF_DTYPE_I8, INF_DTYPE_BF16, INF_DTYPE_F16}) {
        inf_attention_batch batch{};
        batch.size = sizeof batch;
        batch.sequences = 1;
        batch.q_heads = q_heads;
        batch.q_dtype = q_dtype;
        batch.q_starts = q_starts;
        batch.q_positions = q_positions;
        batch.kv_lengths = kv_lengths;
        batch.page_starts = page_starts;
        batch.page_ids = page_ids;
        EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT,
                     "inf_attention_run: batch->q_dtype (" + std::to_string(static_cast<int>(q_dtype)) +
                         ") must be INF_DTYPE_F32 (0) for a pool of dtype INF_DTYPE_I8",
                     inf_attention_run(pool.get(), 0, &batch, q.get(), o.get(), lse.get()));
        inf_page_selection selection{};
        selection.size = sizeof selection;
        selection.sequences = 1;
        selection.q_heads = q_heads;
        selection.q_dtype = q_dtype;
        selection.budget_tokens = config.page_size;
        const int32_t q_rows[] = {0};
        selection.q_rows = q_rows;
        selection.kv_lengths = kv_lengths;
        selection.page_starts = page_starts;
        selection.page_ids = page_ids;
        int32_t starts[8] = {};
        int32_t indices[8] = {};
        EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT,
                     "inf_page_select: selection->q_dtype (" + std::to_string(static_cast<int>(q_dtype)) +
                         ") must be INF_DTYPE_F32 (0) for a pool of dtype INF_DTYPE_I8",
                     inf_page_select(pool.get(), 0, &selection, q.get(), starts, indices, 8));
    }
    // And float32 queries run: the refusal is about the type, not the pool.
    inf_attention_batch batch{};
    batch.size = sizeof batch;
    batch.sequences = 1;
    batch.q_heads = q_heads;
    batch.q_dtype = INF_DTYPE_F32;
    batch.q_starts = q_starts;
    batch.q_positions = q_positions;
    batch.kv_lengths = kv_lengths;
    batch.page_starts = page_starts;
    batch.page_ids = page_ids;
    EXPECT_OK(inf_attention_run(pool.get(), 0, &batch, q.get(), o.get(), lse.get()));
}

TEST(PagePool, AppendErrors) {
    Device device = make_device();
    const inf_page_pool_config config = small_config();
    Pool pool = make_pool(device.get(), config);
    const std::vector<float> k = random_floats(2 * 32, 3);
    const int32_t pages[] = {0, 5};
    const int32_t slots[] = {15, 0};
    EXPECT_OK(inf_page_pool_append(pool.get(), 0, 2, pages, slots, k.data(), k.data()));
    EXPECT_OK(inf_page_pool_append(pool.get(), 1, 0, nullptr, nullptr, nullptr, nullptr));  // nothing to store
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_page_pool_append: pool is null",
                 inf_page_pool_append(nullptr, 0, 2, pages, slots, k.data(), k.data()));
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "inf_page_pool_append: layer (2) is out of range: the pool has 2 layers",
                 inf_page_pool_append(pool.get(), 2, 2, pages, slots, k.data(), k.data()));
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "layer (-1) is out of range",
                 inf_page_pool_append(pool.get(), -1, 2, pages, slots, k.data(), k.data()));
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "inf_page_pool_append: tokens (-1) must be >= 0",
                 inf_page_pool_append(pool.get(), 0, -1, pages, slots, k.data(), k.data()));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_page_pool_append: pages is null",
                 inf_page_pool_append(pool.get(), 0, 2, nullptr, slots, k.data(), k.data()));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_page_pool_append: slots is null",
                 inf_page_pool_append(pool.get(), 0, 2, pages, nullptr, k.data(), k.data()));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_page_pool_append: k is null",
                 inf_page_pool_append(pool.get(), 0, 2, pages, slots, nullptr, k.data()));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_page_pool_append: v is null",
                 inf_page_pool_append(pool.get(), 0, 2, pages, slots, k.data(), nullptr));
    const int32_t bad_pages[] = {0, 6};
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "inf_page_pool_append: pages[1] (6) is out of range: the pool has 6 pages",
                 inf_page_pool_append(pool.get(), 0, 2, bad_pages, slots, k.data(), k.data()));
    const int32_t negative_pages[] = {-1, 0};
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "pages[0] (-1) is out of range",
                 inf_page_pool_append(pool.get(), 0, 2, negative_pages, slots, k.data(), k.data()));
    const int32_t bad_slots[] = {16, 0};
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "inf_page_pool_append: slots[0] (16) is out of range: a page has 16 slots",
                 inf_page_pool_append(pool.get(), 0, 2, pages, bad_slots, k.data(), k.data()));
    const int32_t negative_slots[] = {0, -2};
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "slots[1] (-2) is out of range",
                 inf_page_pool_append(pool.get(), 0, 2, pages, negative_slots, k.data(), k.data()));
}

TEST(PagePool, ReadErrors) {
    Device device = make_device();
    inf_page_pool_config config = small_config();
    Pool pool = make_pool(device.get(), config);
    config.logical_page_size = 0;
    Pool plain = make_pool(device.get(), config);
    std::vector<float> k(page_floats(config));
    std::vector<float> v(page_floats(config));
    std::vector<float> summary(2 * 4 * 2 * 16);
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_page_pool_read_page: pool is null",
                 inf_page_pool_read_page(nullptr, 0, 0, k.data(), v.data()));
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "inf_page_pool_read_page: layer (2) is out of range",
                 inf_page_pool_read_page(pool.get(), 2, 0, k.data(), v.data()));
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "inf_page_pool_read_page: page (6) is out of range: the pool has 6 pages",
                 inf_page_pool_read_page(pool.get(), 0, 6, k.data(), v.data()));
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "page (-1) is out of range",
                 inf_page_pool_read_page(pool.get(), 0, -1, k.data(), v.data()));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_page_pool_read_page: k_out is null",
                 inf_page_pool_read_page(pool.get(), 0, 0, nullptr, v.data()));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_page_pool_read_page: v_out is null",
                 inf_page_pool_read_page(pool.get(), 0, 0, k.data(), nullptr));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_page_pool_read_summary: pool is null",
                 inf_page_pool_read_summary(nullptr, 0, 0, summary.data()));
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "inf_page_pool_read_summary: layer (5) is out of range",
                 inf_page_pool_read_summary(pool.get(), 5, 0, summary.data()));
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "inf_page_pool_read_summary: page (9) is out of range",
                 inf_page_pool_read_summary(pool.get(), 0, 9, summary.data()));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_page_pool_read_summary: summary_out is null",
                 inf_page_pool_read_summary(pool.get(), 0, 0, nullptr));
    EXPECT_ERROR(INF_STATUS_UNSUPPORTED, "inf_page_pool_read_summary: the pool keeps no summaries",
                 inf_page_pool_read_summary(plain.get(), 0, 0, summary.data()));
}

TEST(PagePool, CopyPagesBetweenPools) {
    Device device = make_device();
    for (inf_dtype dtype : {INF_DTYPE_F32, INF_DTYPE_BF16, INF_DTYPE_I8}) {
        inf_page_pool_config config = small_config(dtype);
        Pool src = make_pool(device.get(), config);
        config.pages = 9;  // the page count may differ
        Pool dst = make_pool(device.get(), config);
        const std::size_t row = 2 * 16;
        for (int32_t layer = 0; layer < 2; ++layer) {
            std::vector<int32_t> pages;
            std::vector<int32_t> slots;
            for (int32_t page = 0; page < 6; ++page) {
                for (int32_t slot = 0; slot < 16; slot += 1 + page % 3) {
                    pages.push_back(page);
                    slots.push_back(slot);
                }
            }
            const auto tokens = static_cast<int32_t>(pages.size());
            const std::vector<float> k = random_floats(pages.size() * row, static_cast<std::uint32_t>(31 + layer));
            const std::vector<float> v = random_floats(pages.size() * row, static_cast<std::uint32_t>(41 + layer));
            ASSERT_OK(inf_page_pool_append(src.get(), layer, tokens, pages.data(), slots.data(), k.data(), v.data()));
        }
        // A run of consecutive pages (1, 2, 3 -> 4, 5, 6) and scattered ones.
        const int32_t src_pages[] = {1, 2, 3, 0, 5};
        const int32_t dst_pages[] = {4, 5, 6, 8, 0};
        ASSERT_OK(inf_page_pool_copy_pages(dst.get(), dst_pages, src.get(), src_pages, 5));
        for (int i = 0; i < 5; ++i) {
            for (int32_t layer = 0; layer < 2; ++layer) {
                const PageData a = read_page(src.get(), config, layer, src_pages[i]);
                const PageData b = read_page(dst.get(), config, layer, dst_pages[i]);
                EXPECT_EQ(a.k, b.k) << "page " << src_pages[i] << " layer " << layer;
                EXPECT_EQ(a.v, b.v) << "page " << src_pages[i] << " layer " << layer;
                EXPECT_EQ(read_summary(src.get(), config, layer, src_pages[i]),
                          read_summary(dst.get(), config, layer, dst_pages[i]));
            }
        }
        // Pages not copied to keep their (empty) contents.
        const PageData untouched = read_page(dst.get(), config, 0, 7);
        EXPECT_TRUE(std::all_of(untouched.k.begin(), untouched.k.end(), [](float x) { return x == 0.0F; }));
        // Within one pool.
        const int32_t from[] = {4, 5};
        const int32_t to[] = {2, 3};
        ASSERT_OK(inf_page_pool_copy_pages(dst.get(), to, dst.get(), from, 2));
        EXPECT_EQ(read_page(dst.get(), config, 1, 2).k, read_page(src.get(), config, 1, 1).k);
        EXPECT_EQ(read_page(dst.get(), config, 1, 3).v, read_page(src.get(), config, 1, 2).v);
    }
}

TEST(PagePool, CopyPagesErrors) {
    Device device = make_device();
    const inf_page_pool_config config = small_config();
    Pool a = make_pool(device.get(), config);
    Pool b = make_pool(device.get(), config);
    const int32_t one[] = {1};
    const int32_t two[] = {1, 2};
    EXPECT_OK(inf_page_pool_copy_pages(a.get(), nullptr, b.get(), nullptr, 0));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_page_pool_copy_pages: dst is null",
                 inf_page_pool_copy_pages(nullptr, one, b.get(), one, 1));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_page_pool_copy_pages: src is null",
                 inf_page_pool_copy_pages(a.get(), one, nullptr, one, 1));
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "inf_page_pool_copy_pages: count (-1) must be >= 0",
                 inf_page_pool_copy_pages(a.get(), one, b.get(), one, -1));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_page_pool_copy_pages: dst_pages is null",
                 inf_page_pool_copy_pages(a.get(), nullptr, b.get(), one, 1));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_page_pool_copy_pages: src_pages is null",
                 inf_page_pool_copy_pages(a.get(), one, b.get(), nullptr, 1));
    const int32_t beyond[] = {1, 6};
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "inf_page_pool_copy_pages: dst_pages[1] (6) is out of range: dst has 6 pages",
                 inf_page_pool_copy_pages(a.get(), beyond, b.get(), two, 2));
    const int32_t negative[] = {-1, 2};
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "inf_page_pool_copy_pages: src_pages[0] (-1) is out of range: src has 6 pages",
                 inf_page_pool_copy_pages(a.get(), two, b.get(), negative, 2));
    const int32_t repeated[] = {3, 1, 3};
    const int32_t three[] = {0, 1, 2};
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "inf_page_pool_copy_pages: dst_pages[2] (3) repeats dst_pages[0]",
                 inf_page_pool_copy_pages(a.get(), repeated, b.get(), three, 3));
    const int32_t overlap_to[] = {4, 5};
    const int32_t overlap_from[] = {5, 0};
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT,
                 "inf_page_pool_copy_pages: src_pages[0] (5) is also dst_pages[1]: within one pool",
                 inf_page_pool_copy_pages(a.get(), overlap_to, a.get(), overlap_from, 2));

    struct Case {
        void (*edit)(inf_page_pool_config&);
        const char* message;
    };
    const Case cases[] = {
        {[](inf_page_pool_config& c) { c.dtype = INF_DTYPE_F16; }, "dst and src pools differ in config->dtype (f32 vs f16)"},
        {[](inf_page_pool_config& c) { c.layers = 3; }, "dst and src pools differ in config->layers (2 vs 3)"},
        {[](inf_page_pool_config& c) { c.kv_heads = 4; }, "dst and src pools differ in config->kv_heads (2 vs 4)"},
        {[](inf_page_pool_config& c) { c.head_dim = 32; }, "dst and src pools differ in config->head_dim (16 vs 32)"},
        {[](inf_page_pool_config& c) { c.page_size = 32; }, "dst and src pools differ in config->page_size (16 vs 32)"},
        {[](inf_page_pool_config& c) { c.logical_page_size = 8; },
         "dst and src pools differ in config->logical_page_size (4 vs 8)"},
    };
    for (const Case& c : cases) {
        inf_page_pool_config other = config;
        c.edit(other);
        Pool odd = make_pool(device.get(), other);
        EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, c.message, inf_page_pool_copy_pages(a.get(), one, odd.get(), one, 1));
    }
}

// ---- compact summaries (config.summary_bits 16 and 8) -------------------------------------------------

namespace {

// Keys whose dims differ in scale (2^-6 .. 2^6) and centre (some all-positive or all-negative), so
// that one int8 scale per box is stretched across very different ranges.
std::vector<float> ranged_keys(std::size_t tokens, int32_t heads, int32_t dim, float magnitude, std::mt19937& rng) {
    std::uniform_real_distribution<float> unit(-1.0F, 1.0F);
    std::uniform_int_distribution<int> exponent(-6, 6);
    std::vector<float> scale(static_cast<std::size_t>(heads * dim));
    std::vector<float> centre(scale.size());
    for (std::size_t i = 0; i < scale.size(); ++i) {
        scale[i] = magnitude * std::ldexp(1.0F, exponent(rng));
        centre[i] = (i % 3 == 0 ? 2.0F : i % 3 == 1 ? -2.0F : 0.0F) * scale[i];
    }
    std::vector<float> k(tokens * scale.size());
    for (std::size_t i = 0; i < k.size(); ++i) {
        const float x = centre[i % scale.size()] + scale[i % scale.size()] * unit(rng);
        k[i] = x != 0.0F ? x : 1e-3F;
    }
    return k;
}

// Checks every logical page of page that holds keys: its box contains the float64 min/max of the stored
// keys in slots [first, filled) of it, stays within slack * step of them (step: the bf16 ulp, or the
// int8 scale), and is what the format can represent (bf16 values; int8: integer multiples of one scale).
void check_boxes(const inf_page_pool* pool, const inf_page_pool_config& c, int32_t page, int32_t filled, double slack) {
    const PageData data = read_page(pool, c, 0, page);
    const std::vector<float> summary = read_summary(pool, c, 0, page);
    const int32_t lps = c.logical_page_size;
    const int32_t D = c.head_dim;
    for (int32_t h = 0; h < c.kv_heads; ++h) {
        for (int32_t sub = 0; sub * lps < filled; ++sub) {
            const float* lo = summary.data() + (static_cast<std::size_t>(h * (c.page_size / lps) + sub) * 2) * static_cast<std::size_t>(D);
            const float* hi = lo + D;
            double box_max = 0.0;
            for (int32_t d = 0; d < D; ++d) box_max = std::max({box_max, std::fabs(double{lo[d]}), std::fabs(double{hi[d]})});
            const double int8_step = box_max / 127.0;
            for (int32_t d = 0; d < D; ++d) {
                double mn = INFINITY;
                double mx = -INFINITY;
                for (int32_t slot = sub * lps; slot < std::min((sub + 1) * lps, filled); ++slot) {
                    const double key = data.k[(static_cast<std::size_t>(h * c.page_size + slot)) * static_cast<std::size_t>(D) + static_cast<std::size_t>(d)];
                    mn = std::min(mn, key);
                    mx = std::max(mx, key);
                }
                const auto where = [&] {
                    return ::testing::Message() << "bits " << c.summary_bits << " page " << page << " head " << h << " sub " << sub << " dim " << d;
                };
                ASSERT_LE(double{lo[d]}, mn) << where();
                ASSERT_GE(double{hi[d]}, mx) << where();
                if (c.summary_bits == 16) {
                    for (const float x : {lo[d], hi[d]}) {
                        std::uint32_t bits = 0;
                        std::memcpy(&bits, &x, sizeof bits);
                        ASSERT_EQ(bits & 0xFFFFU, 0U) << where() << ": " << x << " is not a bfloat16";
                    }
                    EXPECT_GE(double{lo[d]}, mn - std::fabs(mn) * 0x1p-7) << where();
                    EXPECT_LE(double{hi[d]}, mx + std::fabs(mx) * 0x1p-7) << where();
                } else {
                    for (const float x : {lo[d], hi[d]}) {
                        const double code = double{x} / int8_step;
                        ASSERT_NEAR(code, std::round(code), 1e-3) << where() << ": " << x << " is no multiple of the scale";
                    }
                    EXPECT_GE(double{lo[d]}, mn - slack * int8_step) << where();
                    EXPECT_LE(double{hi[d]}, mx + slack * int8_step) << where();
                }
            }
        }
    }
}

}  // namespace

TEST(PagePool, CompactSummariesContainEveryKeyAcrossChunkedAppendsAndReuse) {
    Device device = make_device();
    for (const int32_t bits : {16, 8}) {
        for (inf_dtype dtype : {INF_DTYPE_F32, INF_DTYPE_BF16, INF_DTYPE_I8}) {
            inf_page_pool_config config = pool_config(dtype, 1, 2, 32, 32, 6, 8);
            config.summary_bits = bits;
            Pool pool = make_pool(device.get(), config);
            std::mt19937 rng(static_cast<std::uint32_t>(100 + bits + static_cast<int>(dtype)));
            // Round 0 fills pages 1, 4, 2, 5 in random chunks; round 1 reuses them from slot 0 with keys 2^-10
            // as large, so a box that did not restart would be far too wide.
            for (int round = 0; round < 2; ++round) {
                std::vector<int32_t> order = {1, 4, 2, 5};
                std::shuffle(order.begin(), order.end(), rng);
                std::vector<int32_t> pages, slots;
                for (int32_t p : order) {
                    for (int32_t slot = 0; slot < config.page_size; ++slot) {
                        pages.push_back(p);
                        slots.push_back(slot);
                    }
                }
                const std::vector<float> k = ranged_keys(pages.size(), config.kv_heads, config.head_dim,
                                                         round == 0 ? 1.0F : 0x1p-10F, rng);
                const std::vector<float> v = random_floats(k.size(), 7U + static_cast<std::uint32_t>(round));
                const std::size_t row = static_cast<std::size_t>(config.kv_heads * config.head_dim);
                std::uniform_int_distribution<int32_t> chunk(1, 13);
                std::vector<int32_t> filled(static_cast<std::size_t>(config.pages), 0);
                for (std::size_t at = 0; at < pages.size();) {
                    const auto n = static_cast<int32_t>(std::min<std::size_t>(static_cast<std::size_t>(chunk(rng)), pages.size() - at));
                    ASSERT_OK(inf_page_pool_append(pool.get(), 0, n, pages.data() + at, slots.data() + at, k.data() + at * row,
                                                   v.data() + at * row));
                    for (int32_t i = 0; i < n; ++i) {
                        filled[static_cast<std::size_t>(pages[at + static_cast<std::size_t>(i)])] = slots[at + static_cast<std::size_t>(i)] + 1;
                    }
                    at += static_cast<std::size_t>(n);
                    for (int32_t p : order) {
                        // int8: each append may re-encode a box once, widening it by at most a step per side.
                        check_boxes(pool.get(), config, p, filled[static_cast<std::size_t>(p)], config.logical_page_size + 1.0);
                    }
                }
            }
            // Pages never written read as empty boxes in every format.
            const std::vector<float> empty = read_summary(pool.get(), config, 0, 3);
            for (std::size_t i = 0; i < empty.size(); ++i) {
                ASSERT_EQ(empty[i], (i / 32) % 2 == 0 ? INFINITY : -INFINITY) << "bits " << bits << " " << i;
            }
        }
    }
}

TEST(PagePool, CompactSummaryBytesCopiesAndErrors) {
    Device device = make_device();
    inf_page_pool_config config = small_config();  // 2 layers, 2 heads, dim 16, pages of 16, 6 pages, logical 4
    const uint64_t kv = 2ULL * 2 * 6 * 2 * 16 * 16 * 4;
    const uint64_t boxes = 2ULL * 6 * 2 * (16 / 4);  // layers, pages, heads, logical pages
    for (const int32_t bits : {0, 32, 16, 8}) {
        config.summary_bits = bits;
        Pool pool = make_pool(device.get(), config);
        uint64_t bytes = 0;
        ASSERT_OK(inf_page_pool_bytes(pool.get(), &bytes));
        const uint64_t per_box = bits == 8 ? 2 * 16 + 4 : bits == 16 ? 2 * 16 * 2 : 2 * 16 * 4;
        EXPECT_EQ(bytes, kv + boxes * per_box) << "bits " << bits;
    }
    // Copies move the stored summaries as they are; pools of different widths do not mix.
    config.summary_bits = 8;
    Pool src = make_pool(device.get(), config);
    Pool dst = make_pool(device.get(), config);
    std::vector<int32_t> pages, slots;
    for (int32_t slot = 0; slot < 16; ++slot) {
        pages.push_back(2);
        slots.push_back(slot);
    }
    const std::vector<float> k = random_floats(16 * 2 * 16, 5);
    ASSERT_OK(inf_page_pool_append(src.get(), 1, 16, pages.data(), slots.data(), k.data(), k.data()));
    const int32_t from[] = {2};
    const int32_t to[] = {4};
    ASSERT_OK(inf_page_pool_copy_pages(dst.get(), to, src.get(), from, 1));
    EXPECT_EQ(read_summary(dst.get(), config, 1, 4), read_summary(src.get(), config, 1, 2));
    config.summary_bits = 16;
    Pool other = make_pool(device.get(), config);
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "differ in config->summary_bits (16 vs 8)",
                 inf_page_pool_copy_pages(other.get(), to, src.get(), from, 1));
    // Bad widths name the field; a caller built before summary_bits existed gets float32.
    for (const int32_t bits : {7, 64, -8, 1}) {
        config.summary_bits = bits;
        inf_page_pool* pool = nullptr;
        EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "config->summary_bits (" + std::to_string(bits) + ")",
                     inf_page_pool_create(device.get(), &config, &pool));
        EXPECT_EQ(pool, nullptr);
    }
    config.summary_bits = 12345;  // beyond the old caller's size: never read
    config.size = offsetof(inf_page_pool_config, summary_bits);
    Pool old = make_pool(device.get(), config);
    uint64_t bytes = 0;
    ASSERT_OK(inf_page_pool_bytes(old.get(), &bytes));
    EXPECT_EQ(bytes, kv + boxes * 2 * 16 * 4);
    inf_page_pool_config read{};
    read.size = offsetof(inf_page_pool_config, summary_bits);
    read.summary_bits = -3;
    ASSERT_OK(inf_page_pool_get_config(old.get(), &read));
    EXPECT_EQ(read.logical_page_size, 4);
    EXPECT_EQ(read.summary_bits, -3);  // beyond its size: untouched
}
