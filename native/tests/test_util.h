// Helpers shared by the native tests: status assertions that print inf_last_error(), owning wrappers
// for handles (devices, buffers, page pools), page pool configs, random data, and a log capture.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "infinite/infinite.h"

namespace inf_test {

inline std::string status_text(inf_status status) {
    return inf_status_name(status);
}

}  // namespace inf_test

// The call's status must be `expected`; on mismatch, the message of the failure is printed.
#define EXPECT_STATUS(expected, call)                                                              \
    do {                                                                                           \
        const inf_status status_ = (call);                                                         \
        EXPECT_EQ(inf_test::status_text(expected), inf_test::status_text(status_))                 \
            << #call << "\n  last error: " << inf_last_error();                                    \
    } while (0)
#define ASSERT_STATUS(expected, call)                                                              \
    do {                                                                                           \
        const inf_status status_ = (call);                                                         \
        ASSERT_EQ(inf_test::status_text(expected), inf_test::status_text(status_))                 \
            << #call << "\n  last error: " << inf_last_error();                                    \
    } while (0)
#define EXPECT_OK(call) EXPECT_STATUS(INF_STATUS_OK, call)
#define ASSERT_OK(call) ASSERT_STATUS(INF_STATUS_OK, call)

// The call fails with `expected` and inf_last_error() contains `text`.
#define EXPECT_ERROR(expected, text, call)                                                         \
    do {                                                                                           \
        EXPECT_STATUS(expected, call);                                                             \
        EXPECT_THAT(std::string(inf_last_error()), ::testing::HasSubstr(text)) << #call;           \
    } while (0)

namespace inf_test {

struct DeviceDeleter {
    void operator()(inf_device* device) const { EXPECT_OK(inf_device_destroy(device)); }
};
struct BufferDeleter {
    void operator()(inf_buffer* buffer) const { EXPECT_OK(inf_buffer_destroy(buffer)); }
};
struct PoolDeleter {
    void operator()(inf_page_pool* pool) const { EXPECT_OK(inf_page_pool_destroy(pool)); }
};
using Device = std::unique_ptr<inf_device, DeviceDeleter>;
using Buffer = std::unique_ptr<inf_buffer, BufferDeleter>;
using Pool = std::unique_ptr<inf_page_pool, PoolDeleter>;

inline Device make_device(inf_device_kind kind = INF_DEVICE_KIND_CPU, int32_t ordinal = 0) {
    inf_device* device = nullptr;
    EXPECT_OK(inf_device_create(kind, ordinal, &device));
    return Device(device);
}

inline Buffer make_buffer(inf_device* device, uint64_t bytes) {
    inf_buffer* buffer = nullptr;
    EXPECT_OK(inf_buffer_create(device, bytes, &buffer));
    return Buffer(buffer);
}

inline Pool make_pool(inf_device* device, const inf_page_pool_config& config) {
    inf_page_pool* pool = nullptr;
    EXPECT_OK(inf_page_pool_create(device, &config, &pool));
    return Pool(pool);
}

// A complete page pool config (size set).
inline inf_page_pool_config pool_config(inf_dtype dtype, int32_t layers, int32_t kv_heads, int32_t head_dim,
                                        int32_t page_size, int32_t pages, int32_t logical_page_size) {
    inf_page_pool_config config{};
    config.size = sizeof config;
    config.dtype = dtype;
    config.layers = layers;
    config.kv_heads = kv_heads;
    config.head_dim = head_dim;
    config.page_size = page_size;
    config.pages = pages;
    config.logical_page_size = logical_page_size;
    return config;
}

// Random values in [-max_magnitude, -0.05] U [0.05, max_magnitude]: never zero, of both signs;
// reproducible per seed.
inline std::vector<float> random_floats(std::size_t count, std::uint32_t seed, float max_magnitude) {
    std::mt19937 engine(seed);
    std::uniform_real_distribution<float> magnitude(0.05F, max_magnitude);
    std::bernoulli_distribution negative(0.5);
    std::vector<float> values(count);
    for (float& value : values) {
        value = negative(engine) ? -magnitude(engine) : magnitude(engine);
    }
    return values;
}

// Random bytes, reproducible per seed.
inline std::vector<unsigned char> random_bytes(std::size_t count, std::uint64_t seed = 1) {
    std::mt19937_64 engine(seed);
    std::vector<unsigned char> bytes(count);
    for (std::size_t i = 0; i < count; i += 8) {
        const std::uint64_t word = engine();
        std::memcpy(bytes.data() + i, &word, count - i < 8 ? count - i : 8);
    }
    return bytes;
}

inline std::vector<unsigned char> read_all(const inf_buffer* buffer) {
    uint64_t size = 0;
    EXPECT_OK(inf_buffer_size(buffer, &size));
    std::vector<unsigned char> bytes(size);
    EXPECT_OK(inf_buffer_read(buffer, 0, bytes.data(), size));
    return bytes;
}

inline inf_live_objects live_objects() {
    inf_live_objects objects{};
    objects.size = sizeof objects;
    EXPECT_OK(inf_get_live_objects(&objects));
    return objects;
}

struct LogLine {
    inf_log_level level;
    std::string message;
};

// Routes native log lines here while alive (at `level`), then restores stderr and WARNING.
class LogCapture {
public:
    explicit LogCapture(inf_log_level level = INF_LOG_LEVEL_TRACE) {
        EXPECT_OK(inf_set_log_callback(&LogCapture::receive, this));
        EXPECT_OK(inf_set_log_level(level));
    }
    ~LogCapture() {
        EXPECT_OK(inf_set_log_callback(nullptr, nullptr));
        EXPECT_OK(inf_set_log_level(INF_LOG_LEVEL_WARNING));
    }
    LogCapture(const LogCapture&) = delete;
    LogCapture& operator=(const LogCapture&) = delete;

    std::vector<LogLine> lines() const {
        std::lock_guard lock(mutex_);
        return lines_;
    }
    // Lines at `level` that contain text.
    std::size_t count(inf_log_level level, const std::string& text) const {
        std::size_t n = 0;
        for (const auto& line : lines()) {
            n += line.level == level && line.message.find(text) != std::string::npos ? 1 : 0;
        }
        return n;
    }

private:
    static void receive(void* user_data, inf_log_level level, const char* message) {
        auto* self = static_cast<LogCapture*>(user_data);
        std::lock_guard lock(self->mutex_);
        self->lines_.push_back({level, message});
    }

    mutable std::mutex mutex_;
    std::vector<LogLine> lines_;
};

}  // namespace inf_test
