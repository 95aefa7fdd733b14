// The CPU backend (internal unit test): alignment, the fill reference at every alignment, allocation limits.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/backend.h"
#include "core/cpu_backend.h"
#include "core/status.h"

TEST(CpuBackend, AllocationsAre256ByteAligned) {
    inf::Backend& cpu = inf::cpu_backend();
    for (const std::uint64_t bytes : {1ULL, 7ULL, 255ULL, 256ULL, 257ULL, 100000ULL}) {
        void* pointer = cpu.allocate(0, bytes);
        EXPECT_EQ(reinterpret_cast<std::uintptr_t>(pointer) % 256, 0U) << bytes;
        std::memset(pointer, 0x11, bytes);  // the whole requested size is usable (ASan checks)
        cpu.deallocate(0, pointer, bytes);
    }
}

TEST(CpuBackend, ImpossibleAllocationThrowsOutOfMemory) {
    inf::Backend& cpu = inf::cpu_backend();
    try {
        cpu.allocate(0, std::uint64_t{1} << 60);
        FAIL() << "allocation of 2^60 bytes succeeded";
    } catch (const inf::Error& error) {
        EXPECT_EQ(error.status(), INF_STATUS_OUT_OF_MEMORY);
        EXPECT_STREQ(error.what(), "cannot allocate 1152921504606846976 bytes on cpu:0");
    }
}

TEST(CpuBackend, FillMatchesAByteByByteReference) {
    std::vector<unsigned char> memory(300);
    const std::uint64_t pattern = 0xF0E1D2C3B4A59687ULL;
    unsigned char pattern_bytes[8];
    std::memcpy(pattern_bytes, &pattern, 8);
    for (const std::uint32_t width : {1U, 2U, 4U, 8U}) {
        for (std::size_t offset = 0; offset < 9; ++offset) {
            for (const std::uint64_t count : {0ULL, 1ULL, 2ULL, 5ULL, 17ULL, 31ULL}) {
                std::fill(memory.begin(), memory.end(), 0x33);
                inf::cpu_fill(memory.data() + offset, pattern, width, count);
                for (std::size_t i = 0; i < memory.size(); ++i) {
                    const bool inside = i >= offset && i < offset + count * width;
                    const unsigned char want = inside ? pattern_bytes[(i - offset) % width] : 0x33;
                    ASSERT_EQ(memory[i], want) << "width " << width << " offset " << offset << " count " << count
                                               << " byte " << i;
                }
            }
        }
    }
}

TEST(CpuBackend, DeviceNameIsCutAtACharacterBoundary) {
    char out[8];
    inf::copy_device_name(out, sizeof out, "abcde\xC3\xA9\xC3\xA9");  // "abcdeéé": é is 2 bytes
    EXPECT_STREQ(out, "abcde\xC3\xA9");
    inf::copy_device_name(out, sizeof out, "abcdef\xC3\xA9");  // é would not fit whole
    EXPECT_STREQ(out, "abcdef");
    inf::copy_device_name(out, sizeof out, "short");
    EXPECT_STREQ(out, "short");
}

TEST(CpuBackend, OneDevice) {
    EXPECT_EQ(inf::cpu_backend().device_count(), 1);
    EXPECT_TRUE(inf::cpu_backend().host_accessible());
}
