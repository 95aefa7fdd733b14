// HandleRegistry (internal unit test): lookups by kind, removal, counts, thread safety.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "core/handle_registry.h"
#include "core/status.h"

using inf::HandleKind;
using inf::HandleRegistry;

namespace {

inf_status status_of(const std::function<void()>& body) {
    return inf::guard("test", body);
}

}  // namespace

TEST(HandleRegistry, FindReturnsTheObject) {
    HandleRegistry registry;
    auto value = std::make_shared<int>(7);
    const auto handle = registry.add(HandleKind::device, value);
    EXPECT_EQ(registry.find(handle, HandleKind::device, "device").get(), value.get());
}

TEST(HandleRegistry, NullWrongKindAndUnknown) {
    HandleRegistry registry;
    const auto handle = registry.add(HandleKind::buffer, std::make_shared<int>(1), 10);
    EXPECT_EQ(status_of([&] { registry.find(0, HandleKind::buffer, "buffer"); }), INF_STATUS_NULL_POINTER);
    EXPECT_STREQ(inf::last_error(), "test: buffer is null");
    EXPECT_EQ(status_of([&] { registry.find(handle, HandleKind::device, "device"); }), INF_STATUS_INVALID_HANDLE);
    EXPECT_THAT(inf::last_error(), ::testing::HasSubstr("is a buffer handle, not a device handle"));
    EXPECT_EQ(status_of([&] { registry.find(handle + 16, HandleKind::buffer, "buffer"); }), INF_STATUS_INVALID_HANDLE);
}

TEST(HandleRegistry, RemoveHandsBackOwnershipOnce) {
    HandleRegistry registry;
    auto value = std::make_shared<int>(3);
    const auto handle = registry.add(HandleKind::device, value);
    EXPECT_EQ(value.use_count(), 2);
    auto removed = registry.remove(handle, HandleKind::device, "device");
    EXPECT_EQ(removed.get(), value.get());
    removed.reset();
    EXPECT_EQ(value.use_count(), 1);
    EXPECT_EQ(status_of([&] { registry.remove(handle, HandleKind::device, "device"); }), INF_STATUS_INVALID_HANDLE);
}

TEST(HandleRegistry, HandlesAreUniqueNonNullAndNotPointers) {
    HandleRegistry registry;
    std::set<std::uintptr_t> seen;
    for (int i = 0; i < 1000; ++i) {
        const auto handle = registry.add(i % 2 == 0 ? HandleKind::device : HandleKind::buffer, std::make_shared<int>(i));
        EXPECT_NE(handle, 0U);
        EXPECT_EQ(handle >> 60, 0x7U);  // non-canonical: dereferencing one faults
        EXPECT_TRUE(seen.insert(handle).second);
        if (i % 3 == 0) {
            registry.remove(handle, i % 2 == 0 ? HandleKind::device : HandleKind::buffer, "h");
        }
    }
}

TEST(HandleRegistry, Counts) {
    HandleRegistry registry;
    const auto d = registry.add(HandleKind::device, std::make_shared<int>(0));
    const auto b1 = registry.add(HandleKind::buffer, std::make_shared<int>(0), 100);
    const auto b2 = registry.add(HandleKind::buffer, std::make_shared<int>(0), 28);
    auto counts = registry.counts();
    EXPECT_EQ(counts.devices, 1);
    EXPECT_EQ(counts.buffers, 2);
    EXPECT_EQ(counts.buffer_bytes, 128U);
    registry.remove(b1, HandleKind::buffer, "b");
    registry.remove(d, HandleKind::device, "d");
    counts = registry.counts();
    EXPECT_EQ(counts.devices, 0);
    EXPECT_EQ(counts.buffers, 1);
    EXPECT_EQ(counts.buffer_bytes, 28U);
    registry.remove(b2, HandleKind::buffer, "b");
    EXPECT_EQ(registry.counts().buffer_bytes, 0U);
}

TEST(HandleRegistry, ConcurrentAddFindRemove) {
    HandleRegistry registry;
    std::atomic<int> errors{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 2000; ++i) {
                auto value = std::make_shared<int>(i);
                const auto handle = registry.add(HandleKind::buffer, value, 1);
                if (registry.find(handle, HandleKind::buffer, "b").get() != value.get()) {
                    ++errors;
                }
                registry.remove(handle, HandleKind::buffer, "b");
            }
        });
    }
    for (auto& thread : threads) {
        thread.join();
    }
    EXPECT_EQ(errors.load(), 0);
    EXPECT_EQ(registry.counts().buffers, 0);
    EXPECT_EQ(registry.counts().buffer_bytes, 0U);
}
