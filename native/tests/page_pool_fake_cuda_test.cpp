// Page pools and attention on a device the core cannot address (the fake CUDA plug-in of the "fake"
// scenario, see plugin_test.cpp): creation and initialisation through the backend, reads through a host
// copy, copies CPU -> GPU -> GPU (peer) -> CPU, staging of append and attention arguments, and device
// mismatches. The fake checks every pointer and range the core passes it. The paged-KV kernels are not
// faked, so append and attention end in INF_STATUS_UNSUPPORTED after their arguments were staged.
#include <dlfcn.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "fake_cuda_fixture.h"
#include "test_util.h"

using inf_test::Buffer;
using inf_test::Device;
using inf_test::make_buffer;
using inf_test::make_device;
using inf_test::make_pool;
using inf_test::Pool;
using inf_test::pool_config;

namespace {

inf_page_pool_config config_of(inf_dtype dtype) {
    return pool_config(dtype, /*layers=*/3, /*kv_heads=*/2, /*head_dim=*/8, /*page_size=*/16, /*pages=*/5,
                       /*logical_page_size=*/8);
}

constexpr std::size_t kPageFloats = 2 * 16 * 8;
constexpr std::size_t kSummaryFloats = 2 * 2 * 2 * 8;

class FakeCudaPagePool : public FakeCudaTest {
protected:
    FakeCudaPagePool() : FakeCudaTest("fake") {}
};

struct Page {
    std::vector<float> k = std::vector<float>(kPageFloats, std::numeric_limits<float>::quiet_NaN());
    std::vector<float> v = std::vector<float>(kPageFloats, std::numeric_limits<float>::quiet_NaN());
    std::vector<float> summary = std::vector<float>(kSummaryFloats, std::numeric_limits<float>::quiet_NaN());
};

Page read(const inf_page_pool* pool, int32_t layer, int32_t page) {
    Page out;
    EXPECT_OK(inf_page_pool_read_page(pool, layer, page, out.k.data(), out.v.data()));
    EXPECT_OK(inf_page_pool_read_summary(pool, layer, page, out.summary.data()));
    return out;
}

}  // namespace

TEST_F(FakeCudaPagePool, CreatedAndInitialisedThroughTheBackend) {
    Device gpu = make_device(INF_DEVICE_KIND_CUDA, 0);
    const inf_page_pool_config config = config_of(INF_DTYPE_F16);
    Pool pool = make_pool(gpu.get(), config);
    uint64_t bytes = 0;
    ASSERT_OK(inf_page_pool_bytes(pool.get(), &bytes));
    EXPECT_EQ(bytes, 3ULL * 5 * (2 * kPageFloats * 2 + kSummaryFloats * 4));
    EXPECT_GE(fake_stats().bytes_used[0], bytes);
    for (int32_t layer = 0; layer < 3; ++layer) {
        for (int32_t page = 0; page < 5; ++page) {
            const Page p = read(pool.get(), layer, page);
            for (float x : p.k) ASSERT_EQ(x, 0.0F);
            for (float x : p.v) ASSERT_EQ(x, 0.0F);
            for (std::size_t i = 0; i < kSummaryFloats; ++i) {
                ASSERT_EQ(p.summary[i], (i / 8) % 2 == 0 ? INFINITY : -INFINITY) << i;
            }
        }
    }
}

// int8 KV is a CPU format for now (no CUDA kernels read it): refused before anything is allocated.
TEST_F(FakeCudaPagePool, Int8IsRefusedOnACudaDevice) {
    Device gpu = make_device(INF_DEVICE_KIND_CUDA, 0);
    const inf_page_pool_config config = config_of(INF_DTYPE_I8);
    const uint64_t used = fake_stats().bytes_used[0];
    inf_page_pool* pool = nullptr;
    EXPECT_ERROR(INF_STATUS_UNSUPPORTED,
                 "inf_page_pool_create: config->dtype INF_DTYPE_I8 (int8 KV with per-row scales) is supported on the CPU only",
                 inf_page_pool_create(gpu.get(), &config, &pool));
    EXPECT_EQ(pool, nullptr);
    EXPECT_EQ(fake_stats().bytes_used[0], used);
}

TEST_F(FakeCudaPagePool, DoesNotFit) {
    Device gpu = make_device(INF_DEVICE_KIND_CUDA, 1);
    inf_page_pool_config config = config_of(INF_DTYPE_F32);
    config.pages = 1 << 24;  // 3 layers * 2^24 pages * 2 KiB: beyond the fake's memory
    inf_page_pool* pool = nullptr;
    EXPECT_ERROR(INF_STATUS_OUT_OF_MEMORY, "does not fit on cuda:1", inf_page_pool_create(gpu.get(), &config, &pool));
    EXPECT_EQ(pool, nullptr);
}

TEST_F(FakeCudaPagePool, CopiesCpuToGpuToGpuToCpu) {
    Device cpu = make_device();
    Device gpu0 = make_device(INF_DEVICE_KIND_CUDA, 0);
    Device gpu1 = make_device(INF_DEVICE_KIND_CUDA, 1);
    for (inf_dtype dtype : {INF_DTYPE_F32, INF_DTYPE_BF16}) {
        const inf_page_pool_config config = config_of(dtype);
        Pool source = make_pool(cpu.get(), config);
        Pool first = make_pool(gpu0.get(), config);
        Pool second = make_pool(gpu1.get(), config);
        Pool back = make_pool(cpu.get(), config);
        std::mt19937 engine(3);
        std::uniform_real_distribution<float> values(0.1F, 2.0F);
        for (int32_t layer = 0; layer < 3; ++layer) {
            std::vector<int32_t> pages;
            std::vector<int32_t> slots;
            for (int32_t page = 0; page < 5; ++page) {
                for (int32_t slot = 0; slot < 16; ++slot) {
                    pages.push_back(page);
                    slots.push_back(slot);
                }
            }
            std::vector<float> k(pages.size() * 16);
            std::vector<float> v(pages.size() * 16);
            for (float& x : k) x = values(engine);
            for (float& x : v) x = -values(engine);
            ASSERT_OK(inf_page_pool_append(source.get(), layer, static_cast<int32_t>(pages.size()), pages.data(),
                                           slots.data(), k.data(), v.data()));
        }
        const int32_t all[] = {0, 1, 2, 3, 4};
        const int32_t shuffled[] = {3, 4, 0, 2, 1};
        ASSERT_OK(inf_page_pool_copy_pages(first.get(), shuffled, source.get(), all, 5));  // from host
        const int64_t peer_before = fake_stats().peer_copies;
        ASSERT_OK(inf_page_pool_copy_pages(second.get(), all, first.get(), shuffled, 5));  // peer
        EXPECT_GT(fake_stats().peer_copies, peer_before);
        ASSERT_OK(inf_page_pool_copy_pages(back.get(), all, second.get(), all, 5));        // to host
        for (int32_t layer = 0; layer < 3; ++layer) {
            for (int32_t page = 0; page < 5; ++page) {
                const Page expected = read(source.get(), layer, page);
                const Page on_gpu = read(first.get(), layer, shuffled[page]);
                const Page returned = read(back.get(), layer, page);
                EXPECT_EQ(on_gpu.k, expected.k);
                EXPECT_EQ(on_gpu.v, expected.v);
                EXPECT_EQ(on_gpu.summary, expected.summary);
                EXPECT_EQ(returned.k, expected.k);
                EXPECT_EQ(returned.v, expected.v);
                EXPECT_EQ(returned.summary, expected.summary);
            }
        }
        // Within one GPU pool.
        const int32_t from[] = {0};
        const int32_t to[] = {4};
        ASSERT_OK(inf_page_pool_copy_pages(second.get(), to, second.get(), from, 1));
        EXPECT_EQ(read(second.get(), 2, 4).k, read(source.get(), 2, 0).k);
    }
}

TEST_F(FakeCudaPagePool, AppendAndAttentionStageTheirArgumentsThenReportTheMissingKernels) {
    Device gpu = make_device(INF_DEVICE_KIND_CUDA, 0);
    Pool pool = make_pool(gpu.get(), config_of(INF_DTYPE_F32));
    const int32_t pages[] = {1, 2, 2};
    const int32_t slots[] = {0, 15, 3};
    std::vector<float> kv(3 * 16, 0.5F);
    EXPECT_ERROR(INF_STATUS_UNSUPPORTED, "inf_page_pool_append: kv_append",
                 inf_page_pool_append(pool.get(), 1, 3, pages, slots, kv.data(), kv.data()));
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "inf_page_pool_append: slots[1] (16) is out of range",
                 inf_page_pool_append(pool.get(), 1, 2, pages, std::vector<int32_t>{0, 16}.data(), kv.data(), kv.data()));

    const int32_t q_starts[] = {0, 1, 3};
    const int32_t q_positions[] = {20, 1, 2};
    const int32_t kv_lengths[] = {21, 3};
    const int32_t page_starts[] = {0, 2, 3};
    const int32_t page_ids[] = {1, 2, 4};
    const int32_t head_page_starts[] = {0, 2, 3, 4, 4};
    const int32_t head_page_indices[] = {0, 1, 1, 0};
    inf_attention_batch batch{};
    batch.size = sizeof batch;
    batch.sequences = 2;
    batch.q_heads = 4;
    batch.q_dtype = INF_DTYPE_F32;
    batch.q_starts = q_starts;
    batch.q_positions = q_positions;
    batch.kv_lengths = kv_lengths;
    batch.page_starts = page_starts;
    batch.page_ids = page_ids;
    Buffer q = make_buffer(gpu.get(), 3 * 4 * 8 * 4);
    Buffer o = make_buffer(gpu.get(), 3 * 4 * 8 * 4);
    Buffer lse = make_buffer(gpu.get(), 3 * 4 * 4);
    EXPECT_ERROR(INF_STATUS_UNSUPPORTED, "inf_attention_run: attention",
                 inf_attention_run(pool.get(), 0, &batch, q.get(), o.get(), lse.get()));
    batch.head_page_starts = head_page_starts;
    batch.head_page_indices = head_page_indices;
    EXPECT_ERROR(INF_STATUS_UNSUPPORTED, "inf_attention_run: attention",
                 inf_attention_run(pool.get(), 0, &batch, q.get(), o.get(), lse.get()));
    const inf_buffer* o_parts[] = {o.get()};
    const inf_buffer* lse_parts[] = {lse.get()};
    EXPECT_ERROR(INF_STATUS_UNSUPPORTED, "inf_attention_merge: attention merge",
                 inf_attention_merge(1, o_parts, lse_parts, 12, 8, o.get(), lse.get()));

    // Buffers on another device than the pool.
    Device cpu = make_device();
    Buffer host_o = make_buffer(cpu.get(), 3 * 4 * 8 * 4);
    EXPECT_ERROR(INF_STATUS_DEVICE_MISMATCH, "inf_attention_run: o lives on cpu:0 but the pool on cuda:0",
                 inf_attention_run(pool.get(), 0, &batch, q.get(), host_o.get(), lse.get()));
    Device gpu1 = make_device(INF_DEVICE_KIND_CUDA, 1);
    Buffer other_q = make_buffer(gpu1.get(), 3 * 4 * 8 * 4);
    EXPECT_ERROR(INF_STATUS_DEVICE_MISMATCH, "inf_attention_run: q lives on cuda:1 but the pool on cuda:0",
                 inf_attention_run(pool.get(), 0, &batch, other_q.get(), o.get(), lse.get()));
    const inf_buffer* mixed[] = {o.get(), host_o.get()};
    const inf_buffer* lse_twice[] = {lse.get(), lse.get()};
    EXPECT_ERROR(INF_STATUS_DEVICE_MISMATCH, "inf_attention_merge: o_parts[1] lives on cpu:0 but o_out on cuda:0",
                 inf_attention_merge(2, mixed, lse_twice, 12, 8, o.get(), lse.get()));
}
