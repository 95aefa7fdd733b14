// Page migration between instances (inf_page_pool_send_pages / recv_pages) over an in-process pair: the
// pages that arrive read back, summarise and attend exactly as their source; pools of another shape are
// refused naming the field.
#include <cmath>
#include <cstring>
#include <ostream>
#include <string>
#include <vector>

#include "comm_test_util.h"

using inf_test::make_device;
using inf_test::make_endpoints;
using inf_test::make_pool;
using inf_test::pool_config;

namespace {

constexpr int32_t kLayers = 2;
constexpr int32_t kKvHeads = 2;
constexpr int32_t kHeadDim = 16;
constexpr int32_t kPageSize = 16;
constexpr int32_t kPages = 6;
constexpr int32_t kQHeads = 4;

inf_page_pool_config shape(inf_dtype dtype, int32_t summary_bits) {
    inf_page_pool_config config = pool_config(dtype, kLayers, kKvHeads, kHeadDim, kPageSize, kPages, 8);
    config.summary_bits = summary_bits;
    return config;
}

// Fills every slot of pages (in order: token positions 0, 1, ...) of every layer with random keys and values.
void fill(inf_page_pool* pool, const std::vector<int32_t>& pages, uint32_t seed) {
    const auto tokens = static_cast<int32_t>(pages.size()) * kPageSize;
    std::vector<int32_t> page_of(static_cast<std::size_t>(tokens));
    std::vector<int32_t> slot_of(static_cast<std::size_t>(tokens));
    for (int32_t t = 0; t < tokens; ++t) {
        page_of[static_cast<std::size_t>(t)] = pages[static_cast<std::size_t>(t / kPageSize)];
        slot_of[static_cast<std::size_t>(t)] = t % kPageSize;
    }
    for (int32_t layer = 0; layer < kLayers; ++layer) {
        const std::size_t values = static_cast<std::size_t>(tokens) * kKvHeads * kHeadDim;
        const auto k = inf_test::random_floats(values, seed + 2 * static_cast<uint32_t>(layer), 2.0F);
        const auto v = inf_test::random_floats(values, seed + 2 * static_cast<uint32_t>(layer) + 1, 2.0F);
        ASSERT_OK(inf_page_pool_append(pool, layer, tokens, page_of.data(), slot_of.data(), k.data(), v.data()));
    }
}

struct Attention {
    std::vector<float> o;
    std::vector<float> lse;
};

// One sequence of kv_length keys over pages (in position order), two decode-like query rows.
Attention attend(inf_device* device, inf_page_pool* pool, int32_t layer, const std::vector<int32_t>& pages,
                 int32_t kv_length) {
    const std::vector<int32_t> q_starts = {0, 2};
    const std::vector<int32_t> positions = {kv_length - 2, kv_length - 1};
    const std::vector<int32_t> kv_lengths = {kv_length};
    const std::vector<int32_t> page_starts = {0, static_cast<int32_t>(pages.size())};
    inf_attention_batch batch{};
    batch.size = sizeof batch;
    batch.sequences = 1;
    batch.q_heads = kQHeads;
    batch.q_dtype = INF_DTYPE_F32;
    batch.q_starts = q_starts.data();
    batch.q_positions = positions.data();
    batch.kv_lengths = kv_lengths.data();
    batch.page_starts = page_starts.data();
    batch.page_ids = pages.data();
    const auto q_values = inf_test::random_floats(2 * kQHeads * kHeadDim, 99, 1.0F);
    auto q = inf_test::make_buffer(device, q_values.size() * sizeof(float));
    auto o = inf_test::make_buffer(device, q_values.size() * sizeof(float));
    auto lse = inf_test::make_buffer(device, 2 * kQHeads * sizeof(float));
    EXPECT_OK(inf_buffer_write(q.get(), 0, q_values.data(), q_values.size() * sizeof(float)));
    EXPECT_OK(inf_attention_run(pool, layer, &batch, q.get(), o.get(), lse.get()));
    Attention out{std::vector<float>(q_values.size()), std::vector<float>(2 * kQHeads)};
    EXPECT_OK(inf_buffer_read(o.get(), 0, out.o.data(), out.o.size() * sizeof(float)));
    EXPECT_OK(inf_buffer_read(lse.get(), 0, out.lse.data(), out.lse.size() * sizeof(float)));
    return out;
}

std::vector<float> page_kv(const inf_page_pool* pool, int32_t layer, int32_t page) {
    const std::size_t floats = static_cast<std::size_t>(kKvHeads) * kPageSize * kHeadDim;
    std::vector<float> kv(2 * floats);
    EXPECT_OK(inf_page_pool_read_page(pool, layer, page, kv.data(), kv.data() + floats));
    return kv;
}

std::vector<float> page_summary(const inf_page_pool* pool, int32_t layer, int32_t page) {
    std::vector<float> summary(static_cast<std::size_t>(kKvHeads) * (kPageSize / 8) * 2 * kHeadDim);
    EXPECT_OK(inf_page_pool_read_summary(pool, layer, page, summary.data()));
    return summary;
}

// Bitwise: the same bytes went through the same decode (NaN-free data, so == would do too).
bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

struct Case {
    inf_dtype dtype;
    int32_t summary_bits;
};

void PrintTo(const Case& c, std::ostream* out) {
    *out << "dtype " << static_cast<int>(c.dtype) << ", summary_bits " << c.summary_bits;
}

class CommPages : public ::testing::TestWithParam<Case> {};

}  // namespace

TEST_P(CommPages, MigratedPagesReadAndAttendExactlyAsTheirSource) {
    const Case c = GetParam();
    auto device = make_device();
    auto comms = make_endpoints(2);
    auto source = make_pool(device.get(), shape(c.dtype, c.summary_bits));
    auto target = make_pool(device.get(), shape(c.dtype, c.summary_bits));
    const std::vector<int32_t> sequence_pages = {1, 3, 4};  // positions 0..47 of one sequence
    fill(source.get(), sequence_pages, 7);
    fill(target.get(), {0, 1, 2, 3, 4, 5}, 1234);  // the destination pages hold something else before

    // Sent in another order than the sequence's, to pages that are not consecutive.
    const std::vector<int32_t> sent = {3, 1, 4};
    const std::vector<int32_t> stored = {0, 5, 2};
    ASSERT_OK(inf_page_pool_send_pages(comms[0].get(), 1, 77, source.get(), sent.data(), 3));
    ASSERT_OK(inf_page_pool_recv_pages(comms[1].get(), 0, 77, target.get(), stored.data(), 3));

    for (int32_t layer = 0; layer < kLayers; ++layer) {
        for (std::size_t i = 0; i < sent.size(); ++i) {
            EXPECT_TRUE(same_bits(page_kv(source.get(), layer, sent[i]), page_kv(target.get(), layer, stored[i])))
                << "layer " << layer << " page " << sent[i];
            EXPECT_TRUE(
                same_bits(page_summary(source.get(), layer, sent[i]), page_summary(target.get(), layer, stored[i])))
                << "layer " << layer << " page " << sent[i];
        }
        const Attention before = attend(device.get(), source.get(), layer, sequence_pages, 45);
        const Attention after = attend(device.get(), target.get(), layer, {5, 0, 2}, 45);
        EXPECT_TRUE(same_bits(before.o, after.o)) << "layer " << layer;
        EXPECT_TRUE(same_bits(before.lse, after.lse)) << "layer " << layer;
        EXPECT_TRUE(std::isfinite(before.lse[0]));
    }
    // Pages not named keep their contents.
    const auto untouched = page_kv(target.get(), 0, 1);
    EXPECT_FALSE(same_bits(untouched, page_kv(source.get(), 0, 1)));
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CommPages,
                         ::testing::Values(Case{INF_DTYPE_F32, 32}, Case{INF_DTYPE_BF16, 16}, Case{INF_DTYPE_I8, 8},
                                           Case{INF_DTYPE_F16, 32}),
                         [](const auto& param_info) {
                             const Case c = param_info.param;
                             return std::string(c.dtype == INF_DTYPE_F32    ? "f32"
                                                : c.dtype == INF_DTYPE_BF16 ? "bf16"
                                                : c.dtype == INF_DTYPE_I8   ? "i8"
                                                                            : "f16") +
                                    "_summary" + std::to_string(c.summary_bits);
                         });

TEST(CommPagesChecks, AnotherShapeIsRefusedNamingTheField) {
    auto device = make_device();
    auto comms = make_endpoints(2);
    auto source = make_pool(device.get(), shape(INF_DTYPE_F32, 32));
    const int32_t pages[2] = {0, 1};
    const auto refused = [&](inf_page_pool_config config, const std::string& text, int32_t count = 2) {
        auto target = make_pool(device.get(), config);
        ASSERT_OK(inf_page_pool_send_pages(comms[0].get(), 1, 1, source.get(), pages, 2));
        EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, text,
                     inf_page_pool_recv_pages(comms[1].get(), 0, 1, target.get(), pages, count));
    };
    refused(shape(INF_DTYPE_BF16, 32), "pool differs from the sender's pool in config->dtype");
    inf_page_pool_config config = shape(INF_DTYPE_F32, 32);
    config.layers = 3;
    refused(config, "config->layers (3 here, 2 there)");
    config = shape(INF_DTYPE_F32, 32);
    config.kv_heads = 1;
    refused(config, "config->kv_heads (1 here, 2 there)");
    config = shape(INF_DTYPE_F32, 32);
    config.head_dim = 8;
    refused(config, "config->head_dim (8 here, 16 there)");
    config = shape(INF_DTYPE_F32, 32);
    config.page_size = 32;
    refused(config, "config->page_size (32 here, 16 there)");
    config = shape(INF_DTYPE_F32, 32);
    config.logical_page_size = 16;
    refused(config, "config->logical_page_size (16 here, 8 there)");
    refused(shape(INF_DTYPE_F32, 16), "config->summary_bits (16 here, 32 there)");
    refused(shape(INF_DTYPE_F32, 32), "count (1) differs from the 2 pages the sender sent", 1);
    config = shape(INF_DTYPE_F32, 32);
    config.pages = 3;  // the number of pages is a pool's own business
    auto smaller = make_pool(device.get(), config);
    ASSERT_OK(inf_page_pool_send_pages(comms[0].get(), 1, 1, source.get(), pages, 2));
    EXPECT_OK(inf_page_pool_recv_pages(comms[1].get(), 0, 1, smaller.get(), pages, 2));
}

TEST(CommPagesChecks, BadArgumentsAreRefusedBeforeAnythingMoves) {
    auto device = make_device();
    auto comms = make_endpoints(2);
    auto source = make_pool(device.get(), shape(INF_DTYPE_F32, 32));
    auto target = make_pool(device.get(), shape(INF_DTYPE_F32, 32));
    const int32_t pages[2] = {0, 1};
    const int32_t bad[2] = {0, 6};
    const int32_t repeated[2] = {4, 4};
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "pages[1] (6)",
                 inf_page_pool_send_pages(comms[0].get(), 1, 1, source.get(), bad, 2));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "pages is null",
                 inf_page_pool_send_pages(comms[0].get(), 1, 1, source.get(), nullptr, 2));
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "count (-1)",
                 inf_page_pool_send_pages(comms[0].get(), 1, 1, source.get(), pages, -1));
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "peer (2)",
                 inf_page_pool_send_pages(comms[0].get(), 2, 1, source.get(), pages, 2));
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "tag (40000)",
                 inf_page_pool_send_pages(comms[0].get(), 1, 40000, source.get(), pages, 2));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "pool is null",
                 inf_page_pool_send_pages(comms[0].get(), 1, 1, nullptr, pages, 2));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "comm is null", inf_page_pool_send_pages(nullptr, 1, 1, source.get(), pages, 2));

    // Nothing was sent by those; the receiver's own bad arguments leave the message queued.
    ASSERT_OK(inf_comm_set_timeout(comms[1].get(), 10));
    EXPECT_STATUS(INF_STATUS_TIMEOUT, inf_page_pool_recv_pages(comms[1].get(), 0, 1, target.get(), pages, 2));
    ASSERT_OK(inf_page_pool_send_pages(comms[0].get(), 1, 1, source.get(), pages, 2));
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "pages[1] (6)",
                 inf_page_pool_recv_pages(comms[1].get(), 0, 1, target.get(), bad, 2));
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "pages[1] (4) repeats pages[0]",
                 inf_page_pool_recv_pages(comms[1].get(), 0, 1, target.get(), repeated, 2));
    EXPECT_OK(inf_page_pool_recv_pages(comms[1].get(), 0, 1, target.get(), pages, 2));

    // Zero pages: a header alone.
    ASSERT_OK(inf_page_pool_send_pages(comms[0].get(), 1, 2, source.get(), nullptr, 0));
    EXPECT_OK(inf_page_pool_recv_pages(comms[1].get(), 0, 2, target.get(), nullptr, 0));
}

TEST(CommPagesChecks, AMessageThatIsNotPagesIsAPeerFailure) {
    auto device = make_device();
    auto comms = make_endpoints(2);
    auto target = make_pool(device.get(), shape(INF_DTYPE_F32, 32));
    const int32_t pages[1] = {0};
    ASSERT_OK(inf_comm_send(comms[0].get(), 1, 3, "hello", 5));
    EXPECT_ERROR(INF_STATUS_PEER_FAILED, "too short for a page message",
                 inf_page_pool_recv_pages(comms[1].get(), 0, 3, target.get(), pages, 1));
    const std::vector<unsigned char> junk(4096, 0xAB);
    ASSERT_OK(inf_comm_send(comms[0].get(), 1, 3, junk.data(), junk.size()));
    EXPECT_ERROR(INF_STATUS_PEER_FAILED, "is not a page message",
                 inf_page_pool_recv_pages(comms[1].get(), 0, 3, target.get(), pages, 1));
}
