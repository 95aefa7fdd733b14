#include "core/cpu_backend.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>

#include "attention/cpu_attention.h"
#include "attention/cpu_page_select.h"
#include "core/log.h"
#include "core/status.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace inf {

namespace {

constexpr std::uint64_t kAlignment = 256;
constexpr std::uint64_t kHugePage = std::uint64_t{2} << 20;
constexpr std::uint64_t kHugeThreshold = std::uint64_t{4} << 20;
// From this size on, fills bypass the cache (the data would not fit anyway).
constexpr std::uint64_t kStreamingFillBytes = std::uint64_t{8} << 20;

struct MemInfo {
    std::uint64_t total = 0;
    std::uint64_t available = 0;
    std::uint64_t swap_total = 0;
};

// /proc/meminfo values are in KiB; fall back to sysconf where /proc is not mounted.
MemInfo read_meminfo() {
    MemInfo info;
    std::ifstream file("/proc/meminfo");
    std::string key;
    std::uint64_t value = 0;
    std::string unit;
    while (file >> key >> value) {
        std::getline(file, unit);
        if (key == "MemTotal:") {
            info.total = value * 1024;
        } else if (key == "MemAvailable:") {
            info.available = value * 1024;
        } else if (key == "SwapTotal:") {
            info.swap_total = value * 1024;
        }
    }
    if (info.total == 0) {
        const long pages = sysconf(_SC_PHYS_PAGES);
        const long free_pages = sysconf(_SC_AVPHYS_PAGES);
        const long page_size = sysconf(_SC_PAGESIZE);
        if (pages > 0 && page_size > 0) {
            info.total = static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page_size);
            info.available = free_pages > 0 ? static_cast<std::uint64_t>(free_pages) * static_cast<std::uint64_t>(page_size) : 0;
        }
    }
    return info;
}

std::string read_cpu_name() {
    std::ifstream file("/proc/cpuinfo");
    std::string line;
    while (std::getline(file, line)) {
        // x86: "model name"; some ARM kernels: "Hardware" or "Processor".
        if (line.rfind("model name", 0) == 0 || line.rfind("Hardware", 0) == 0 || line.rfind("Processor", 0) == 0) {
            const auto colon = line.find(':');
            if (colon != std::string::npos) {
                const auto begin = line.find_first_not_of(" \t", colon + 1);
                if (begin != std::string::npos) {
                    return line.substr(begin);
                }
            }
        }
    }
    return "cpu";
}

std::int32_t cpu_compute_units() noexcept {
    const unsigned n = std::thread::hardware_concurrency();
    return n == 0 ? 1 : static_cast<std::int32_t>(n);
}

class CpuBackend final : public Backend {
public:
    inf_device_kind kind() const noexcept override { return INF_DEVICE_KIND_CPU; }
    bool host_accessible() const noexcept override { return true; }
    std::int32_t device_count() const override { return 1; }

    void device_info(std::int32_t ordinal, inf_device_info& info) const override {
        check_ordinal(*this, ordinal);
        static const std::string name = read_cpu_name();
        const MemInfo memory = read_meminfo();
        info.kind = INF_DEVICE_KIND_CPU;
        info.ordinal = ordinal;
        info.compute_units = cpu_compute_units();
        info.total_memory = memory.total;
        info.free_memory = memory.available;
        info.capability_major = 0;
        info.capability_minor = 0;
        info.features = cpu_features();
        info.reserved = 0;
        copy_device_name(info.name, sizeof info.name, name);
    }

    void* allocate(std::int32_t ordinal, std::uint64_t bytes) override {
        // Requests beyond RAM + swap cannot succeed; refuse them before the allocator does something
        // drastic with them (sanitizer allocators abort on absurd sizes).
        static const std::uint64_t limit = [] {
            const MemInfo memory = read_meminfo();
            return memory.total == 0 ? ~std::uint64_t{0} : memory.total + memory.swap_total;
        }();
        void* pointer = nullptr;
        // Large blocks (KV pools, converted weights) are scanned end to end every step: on 2 MiB pages
        // (transparent huge pages, asked for with madvise) those scans miss the TLB 512x less often.
        const std::uint64_t alignment = bytes >= kHugeThreshold ? kHugePage : kAlignment;
        if (bytes <= limit && bytes <= ~std::uint64_t{0} - (alignment - 1)) {
            // aligned_alloc wants a size that is a multiple of the alignment.
            const std::uint64_t rounded = (bytes + alignment - 1) / alignment * alignment;
            pointer = std::aligned_alloc(alignment, rounded);
#ifdef MADV_HUGEPAGE
            if (pointer != nullptr && alignment == kHugePage) {
                (void)madvise(pointer, rounded, MADV_HUGEPAGE);  // advice only: without THP nothing changes
            }
#endif
        }
        if (pointer == nullptr) {
            fail(INF_STATUS_OUT_OF_MEMORY, "cannot allocate ", bytes, " bytes on ", device_label(kind(), ordinal));
        }
        return pointer;
    }

    void deallocate(std::int32_t, void* pointer, std::uint64_t) noexcept override { std::free(pointer); }

    void copy_from_host(std::int32_t, void* dst, const void* src, std::uint64_t bytes) override {
        std::memcpy(dst, src, bytes);
    }
    void copy_to_host(std::int32_t, void* dst, const void* src, std::uint64_t bytes) override {
        std::memcpy(dst, src, bytes);
    }
    void copy_within(std::int32_t, void* dst, const void* src, std::uint64_t bytes) override {
        std::memmove(dst, src, bytes);
    }
    void copy_peer(std::int32_t dst_ordinal, void*, std::int32_t src_ordinal, const void*, std::uint64_t) override {
        // There is one CPU device, so the core never asks; a request here is a bug in the core.
        fail(INF_STATUS_INTERNAL, "peer copy between cpu:", src_ordinal, " and cpu:", dst_ordinal);
    }
    void fill(std::int32_t, void* dst, std::uint64_t pattern, std::uint32_t pattern_bytes,
              std::uint64_t count) override {
        cpu_fill(dst, pattern, pattern_bytes, count);
    }
    void synchronize(std::int32_t) override {
        // CPU work is synchronous: nothing is ever queued.
    }

    // Paged-KV kernels: the core has validated every index (api/attention_api.cpp, kv/page_pool.cpp).
    void kv_append(std::int32_t, const inf_kv_append_params& params) override { cpu::kv_append(params); }
    void attention(std::int32_t, const inf_attention_params& params) override { cpu::attention(params); }
    void attention_merge(std::int32_t, const inf_attention_merge_params& params) override {
        cpu::attention_merge(params);
    }
    void page_select(std::int32_t, const inf_page_select_params& params) override { cpu::page_select(params); }
    std::uint64_t page_select_workspace_bytes(std::int32_t, const inf_page_select_params& params) const override {
        return cpu::page_select_workspace_bytes(params);
    }
    std::uint64_t attention_workspace_bytes(std::int32_t, const inf_attention_params& params) const override {
        return cpu::attention_workspace_bytes(params);
    }
};

}  // namespace

void cpu_fill(void* dst, std::uint64_t pattern, std::uint32_t pattern_bytes, std::uint64_t count) noexcept {
    auto* out = static_cast<unsigned char*>(dst);
    const std::uint64_t total = count * pattern_bytes;
    // The pattern repeated over 64 bytes. pattern_bytes divides 64 (and 16), so block + k, for k below
    // pattern_bytes, is the pattern starting at its byte k, for any length up to 64 - k.
    unsigned char one[8];
    std::memcpy(one, &pattern, sizeof one);
    bool uniform = true;
    for (unsigned i = 1; i < pattern_bytes; ++i) {
        uniform = uniform && one[i] == one[0];
    }
    if (uniform) {
        std::memset(out, one[0], total);  // one repeated byte (zeros, 0xFF, ...): libc's memset is best
        return;
    }
    unsigned char block[64];
    std::memcpy(block, one, pattern_bytes);
    for (std::size_t filled = pattern_bytes; filled < sizeof block; filled *= 2) {
        std::memcpy(block + filled, block, filled);  // doubling: no division per byte
    }
#if defined(__SSE2__)
    // Large fills: non-temporal 16-byte stores skip reading every destination line into the cache first,
    // the way memset does for large sizes.
    if (total >= kStreamingFillBytes) {
        const std::uint64_t head = (16 - reinterpret_cast<std::uintptr_t>(out) % 16) % 16;
        std::memcpy(out, block, head);
        const __m128i wide = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + head % pattern_bytes));
        std::uint64_t i = head;
        for (; i + 16 <= total; i += 16) {
            _mm_stream_si128(reinterpret_cast<__m128i*>(out + i), wide);
        }
        _mm_sfence();
        std::memcpy(out + i, block + i % pattern_bytes, total - i);
        return;
    }
#endif
    // 64 bytes per step: the compiler emits a few wide unaligned stores.
    std::uint64_t i = 0;
    for (; i + sizeof block <= total; i += sizeof block) {
        std::memcpy(out + i, block, sizeof block);
    }
    std::memcpy(out + i, block, total - i);
}

std::uint32_t cpu_features() noexcept {
    std::uint32_t features = 0;
#if defined(__x86_64__) || defined(__i386__)
    // __builtin_cpu_supports also checks that the OS saves the wider registers.
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) features |= INF_CPU_FEATURE_AVX2;
    if (__builtin_cpu_supports("fma")) features |= INF_CPU_FEATURE_FMA;
    unsigned eax1 = 0, ebx1 = 0, ecx1 = 0, edx1 = 0;
    // f16c: CPUID leaf 1, ECX bit 29 (not every compiler knows the name); it uses the AVX state.
    if (__builtin_cpu_supports("avx") && __get_cpuid(1, &eax1, &ebx1, &ecx1, &edx1) != 0 && (ecx1 & (1U << 29)) != 0) {
        features |= INF_CPU_FEATURE_F16C;
    }
    if (__builtin_cpu_supports("avx512f")) {
        features |= INF_CPU_FEATURE_AVX512F;
        // Not every compiler knows "avx512bf16" for __builtin_cpu_supports (clang 14 does not):
        // CPUID leaf 7 sub-leaf 1, EAX bit 5. The OS check is covered by avx512f above.
        unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
        if (__get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx) != 0 && (eax & (1U << 5)) != 0) {
            features |= INF_CPU_FEATURE_AVX512BF16;
        }
    }
#endif
    return features;
}

Backend& cpu_backend() {
    static CpuBackend* backend = new CpuBackend();
    return *backend;
}

}  // namespace inf
