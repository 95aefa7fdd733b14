#include "device_checks.h"

#include <algorithm>
#include <cstring>
#include <thread>
#include <vector>

#include "test_util.h"

namespace inf_test {

void check_round_trip(inf_device* device) {
    constexpr std::uint64_t kSize = 64 * 1024 + 13;
    Buffer buffer = make_buffer(device, kSize);
    ASSERT_NE(buffer, nullptr);
    const auto data = random_bytes(kSize, 11);
    ASSERT_OK(inf_buffer_write(buffer.get(), 0, data.data(), kSize));
    EXPECT_EQ(read_all(buffer.get()), data);

    // Partial writes and reads at odd offsets.
    const auto patch = random_bytes(1001, 12);
    ASSERT_OK(inf_buffer_write(buffer.get(), 777, patch.data(), patch.size()));
    auto expected = data;
    std::copy(patch.begin(), patch.end(), expected.begin() + 777);
    EXPECT_EQ(read_all(buffer.get()), expected);

    std::vector<unsigned char> part(333);
    ASSERT_OK(inf_buffer_read(buffer.get(), kSize - part.size(), part.data(), part.size()));
    EXPECT_TRUE(std::equal(part.begin(), part.end(), expected.end() - static_cast<std::ptrdiff_t>(part.size())));

    // Zero bytes with null host pointers move nothing, at any offset up to the end.
    EXPECT_OK(inf_buffer_write(buffer.get(), kSize, nullptr, 0));
    EXPECT_OK(inf_buffer_read(buffer.get(), 0, nullptr, 0));
    EXPECT_EQ(read_all(buffer.get()), expected);
}

void check_fill_patterns(inf_device* device) {
    constexpr std::uint64_t kSize = 8192;
    Buffer buffer = make_buffer(device, kSize);
    ASSERT_NE(buffer, nullptr);
    const unsigned char pattern[8] = {0x8D, 0x21, 0xF3, 0x5A, 0x07, 0xC9, 0x64, 0xBE};
    const std::uint32_t widths[] = {1, 2, 4, 8};
    const std::uint64_t offsets[] = {0, 1, 3, 8, 16, 17, 250};
    const std::uint64_t counts[] = {0, 1, 3, 7, 100, 901};
    std::uint64_t seed = 100;
    for (const std::uint32_t width : widths) {
        for (const std::uint64_t offset : offsets) {
            for (const std::uint64_t count : counts) {
                const auto before = random_bytes(kSize, ++seed);
                ASSERT_OK(inf_buffer_write(buffer.get(), 0, before.data(), kSize));
                ASSERT_OK(inf_buffer_fill(buffer.get(), offset, pattern, width, count));
                const auto after = read_all(buffer.get());
                ASSERT_EQ(after.size(), kSize);
                const std::uint64_t end = offset + count * width;
                for (std::uint64_t i = 0; i < kSize; ++i) {
                    const unsigned char want = i >= offset && i < end ? pattern[(i - offset) % width] : before[i];
                    ASSERT_EQ(static_cast<int>(want), static_cast<int>(after[i]))
                        << "byte " << i << ", pattern_bytes " << width << ", offset " << offset << ", count " << count;
                }
            }
        }
    }
    // A fill up to the last byte of the buffer.
    ASSERT_OK(inf_buffer_fill(buffer.get(), kSize - 8 * 5, pattern, 8, 5));
    const auto tail = read_all(buffer.get());
    for (std::uint64_t i = kSize - 40; i < kSize; ++i) {
        ASSERT_EQ(tail[i], pattern[i % 8]) << "byte " << i;
    }
}

void check_overlapping_copy(inf_device* device, std::uint64_t bytes) {
    Buffer buffer = make_buffer(device, bytes);
    ASSERT_NE(buffer, nullptr);
    struct Case {
        std::uint64_t dst, src, n;
    };
    const std::uint64_t q = bytes / 4;
    const Case cases[] = {
        {1, 0, bytes - 1},    // shift up by one byte: every chunk overlaps the next
        {0, 1, bytes - 1},    // shift down by one byte
        {q, 0, 2 * q + 5},    // dst after src, overlapping
        {0, q, 2 * q + 5},    // dst before src, overlapping
        {2 * q, 0, q},        // disjoint ranges of one buffer
        {q, q, q},            // same range: no-op
    };
    std::uint64_t seed = 500;
    for (const Case& c : cases) {
        auto expected = random_bytes(bytes, ++seed);
        ASSERT_OK(inf_buffer_write(buffer.get(), 0, expected.data(), bytes));
        ASSERT_OK(inf_buffer_copy(buffer.get(), c.dst, buffer.get(), c.src, c.n));
        std::memmove(expected.data() + c.dst, expected.data() + c.src, c.n);
        EXPECT_TRUE(read_all(buffer.get()) == expected) << "dst " << c.dst << " src " << c.src << " bytes " << c.n;
    }
}

void check_copy_between(inf_device* from, inf_device* to) {
    constexpr std::uint64_t kSize = 100'003;
    Buffer source = make_buffer(from, kSize);
    Buffer target = make_buffer(to, kSize);
    ASSERT_NE(source, nullptr);
    ASSERT_NE(target, nullptr);
    const auto data = random_bytes(kSize, 21);
    auto expected = random_bytes(kSize, 22);
    ASSERT_OK(inf_buffer_write(source.get(), 0, data.data(), kSize));
    ASSERT_OK(inf_buffer_write(target.get(), 0, expected.data(), kSize));

    ASSERT_OK(inf_buffer_copy(target.get(), 5, source.get(), 1000, 50'000));
    std::copy_n(data.begin() + 1000, 50'000, expected.begin() + 5);
    EXPECT_TRUE(read_all(target.get()) == expected);

    // And back the other way, the whole buffer.
    ASSERT_OK(inf_buffer_copy(source.get(), 0, target.get(), 0, kSize));
    EXPECT_TRUE(read_all(source.get()) == expected);
}

void check_buffer_outlives_device(inf_device_kind kind, std::int32_t ordinal) {
    const inf_live_objects start = live_objects();
    inf_device* device = nullptr;
    ASSERT_OK(inf_device_create(kind, ordinal, &device));
    inf_buffer* buffer = nullptr;
    ASSERT_OK(inf_buffer_create(device, 4096, &buffer));
    ASSERT_OK(inf_device_destroy(device));
    EXPECT_EQ(live_objects().devices, start.devices);
    EXPECT_EQ(live_objects().buffers, start.buffers + 1);

    // The buffer still works, and still says where it lives.
    const auto data = random_bytes(4096, 31);
    EXPECT_OK(inf_buffer_write(buffer, 0, data.data(), data.size()));
    const std::uint32_t word = 0xA5A5F00DU;
    EXPECT_OK(inf_buffer_fill(buffer, 4, &word, 4, 2));
    auto expected = data;
    std::memcpy(expected.data() + 4, &word, 4);
    std::memcpy(expected.data() + 8, &word, 4);
    EXPECT_EQ(read_all(buffer), expected);
    inf_device_kind where = INF_DEVICE_KIND_CPU;
    std::int32_t which = -1;
    EXPECT_OK(inf_buffer_location(buffer, &where, &which));
    EXPECT_EQ(where, kind);
    EXPECT_EQ(which, ordinal);

    EXPECT_OK(inf_buffer_destroy(buffer));
    EXPECT_EQ(live_objects().buffers, start.buffers);
    EXPECT_EQ(live_objects().buffer_bytes, start.buffer_bytes);
}

void check_destroy_on_other_thread(inf_device* device) {
    std::vector<inf_buffer*> buffers(16, nullptr);
    for (auto& buffer : buffers) {
        ASSERT_OK(inf_buffer_create(device, 1 << 16, &buffer));
    }
    std::vector<inf_status> results(buffers.size(), INF_STATUS_INTERNAL);
    std::thread worker([&] {
        for (std::size_t i = 0; i < buffers.size(); ++i) {
            results[i] = inf_buffer_destroy(buffers[i]);
        }
    });
    worker.join();
    for (const inf_status status : results) {
        EXPECT_EQ(status, INF_STATUS_OK);
    }
    // Gone for every thread.
    EXPECT_STATUS(INF_STATUS_INVALID_HANDLE, inf_buffer_destroy(buffers[0]));
}

}  // namespace inf_test
