// Handle validation: every function that takes a handle refuses null, destroyed, foreign and garbage
// values with a status and a message, and never dereferences them.
#include <cstdint>
#include <string>
#include <vector>

#include "test_util.h"

using inf_test::make_buffer;
using inf_test::make_device;
using ::testing::HasSubstr;

namespace {

// Values that are not handles: small integers, a stack address, a heap address, an odd address, -1, and
// a value with the high bits that real handles use (but not one this library handed out).
std::vector<uintptr_t> garbage_values() {
    static int on_the_stack = 0;
    static std::vector<char> on_the_heap(64);
    return {1, 0x10, 0xdeadbeef, reinterpret_cast<uintptr_t>(&on_the_stack),
            reinterpret_cast<uintptr_t>(on_the_heap.data()), reinterpret_cast<uintptr_t>(on_the_heap.data()) + 3,
            ~uintptr_t{0}, (uintptr_t{0x7} << 60) | (uintptr_t{0xFFFFFF} << 4) | 1};
}

// Calls every function that takes a device handle with `device`; each must return `expected`.
void expect_device_refused(inf_device* device, inf_status expected, const std::string& text) {
    inf_device_info info{};
    info.size = sizeof info;
    inf_buffer* buffer = nullptr;
    EXPECT_ERROR(expected, "inf_device_query: device" + text, inf_device_query(device, &info));
    EXPECT_ERROR(expected, "inf_device_synchronize: device" + text, inf_device_synchronize(device));
    EXPECT_ERROR(expected, "inf_buffer_create: device" + text, inf_buffer_create(device, 64, &buffer));
    EXPECT_EQ(buffer, nullptr);
    if (device != nullptr) {
        EXPECT_ERROR(expected, "inf_device_destroy: device" + text, inf_device_destroy(device));
    }
}

// Calls every function that takes a buffer handle with `buffer` (as each of its roles).
void expect_buffer_refused(inf_buffer* buffer, inf_status expected, const std::string& text) {
    inf_test::Device device = make_device();
    inf_test::Buffer good = make_buffer(device.get(), 64);
    uint64_t bytes = 0;
    inf_device_kind kind = INF_DEVICE_KIND_CPU;
    int32_t ordinal = 0;
    unsigned char host[8] = {};
    const uint32_t pattern = 7;
    EXPECT_ERROR(expected, "inf_buffer_size: buffer" + text, inf_buffer_size(buffer, &bytes));
    EXPECT_ERROR(expected, "inf_buffer_location: buffer" + text, inf_buffer_location(buffer, &kind, &ordinal));
    EXPECT_ERROR(expected, "inf_buffer_write: dst" + text, inf_buffer_write(buffer, 0, host, sizeof host));
    EXPECT_ERROR(expected, "inf_buffer_read: src" + text, inf_buffer_read(buffer, 0, host, sizeof host));
    EXPECT_ERROR(expected, "inf_buffer_copy: dst" + text, inf_buffer_copy(buffer, 0, good.get(), 0, 8));
    EXPECT_ERROR(expected, "inf_buffer_copy: src" + text, inf_buffer_copy(good.get(), 0, buffer, 0, 8));
    EXPECT_ERROR(expected, "inf_buffer_fill: dst" + text, inf_buffer_fill(buffer, 0, &pattern, 4, 1));
    if (buffer != nullptr) {
        EXPECT_ERROR(expected, "inf_buffer_destroy: buffer" + text, inf_buffer_destroy(buffer));
    }
}

}  // namespace

TEST(Handles, NullDevice) {
    expect_device_refused(nullptr, INF_STATUS_NULL_POINTER, " is null");
}

TEST(Handles, NullBuffer) {
    expect_buffer_refused(nullptr, INF_STATUS_NULL_POINTER, " is null");
}

TEST(Handles, DestroyedDevice) {
    inf_device* device = nullptr;
    ASSERT_OK(inf_device_create(INF_DEVICE_KIND_CPU, 0, &device));
    ASSERT_OK(inf_device_destroy(device));
    expect_device_refused(device, INF_STATUS_INVALID_HANDLE, " (0x");
    EXPECT_THAT(inf_last_error(), HasSubstr("is not a live device handle"));
}

TEST(Handles, DestroyedBuffer) {
    inf_test::Device device = make_device();
    inf_buffer* buffer = nullptr;
    ASSERT_OK(inf_buffer_create(device.get(), 64, &buffer));
    ASSERT_OK(inf_buffer_destroy(buffer));
    expect_buffer_refused(buffer, INF_STATUS_INVALID_HANDLE, " (0x");
}

TEST(Handles, DestroyedHandlesStayDeadAfterNewObjects) {
    // A new object never takes over a destroyed handle's value.
    inf_device* old_device = nullptr;
    ASSERT_OK(inf_device_create(INF_DEVICE_KIND_CPU, 0, &old_device));
    ASSERT_OK(inf_device_destroy(old_device));
    std::vector<inf_test::Device> fresh;
    for (int i = 0; i < 64; ++i) {
        fresh.push_back(make_device());
        EXPECT_NE(fresh.back().get(), old_device);
    }
    EXPECT_STATUS(INF_STATUS_INVALID_HANDLE, inf_device_synchronize(old_device));
}

TEST(Handles, GarbageDevice) {
    for (const uintptr_t value : garbage_values()) {
        SCOPED_TRACE(value);
        expect_device_refused(reinterpret_cast<inf_device*>(value), INF_STATUS_INVALID_HANDLE, " (0x");
    }
}

TEST(Handles, GarbageBuffer) {
    for (const uintptr_t value : garbage_values()) {
        SCOPED_TRACE(value);
        expect_buffer_refused(reinterpret_cast<inf_buffer*>(value), INF_STATUS_INVALID_HANDLE, " (0x");
    }
}

TEST(Handles, BufferPassedAsDevice) {
    inf_test::Device device = make_device();
    inf_test::Buffer buffer = make_buffer(device.get(), 64);
    auto* wrong = reinterpret_cast<inf_device*>(buffer.get());
    EXPECT_ERROR(INF_STATUS_INVALID_HANDLE, "is a buffer handle, not a device handle", inf_device_synchronize(wrong));
    EXPECT_ERROR(INF_STATUS_INVALID_HANDLE, "is a buffer handle, not a device handle", inf_device_destroy(wrong));
    uint64_t bytes = 0;
    EXPECT_OK(inf_buffer_size(buffer.get(), &bytes));  // the buffer itself is untouched
}

TEST(Handles, DevicePassedAsBuffer) {
    inf_test::Device device = make_device();
    auto* wrong = reinterpret_cast<inf_buffer*>(device.get());
    uint64_t bytes = 0;
    EXPECT_ERROR(INF_STATUS_INVALID_HANDLE, "is a device handle, not a buffer handle", inf_buffer_size(wrong, &bytes));
    EXPECT_ERROR(INF_STATUS_INVALID_HANDLE, "is a device handle, not a buffer handle", inf_buffer_destroy(wrong));
    EXPECT_OK(inf_device_synchronize(device.get()));
}
