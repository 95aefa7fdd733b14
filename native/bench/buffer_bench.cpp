// Buffer fill and copy, 4 KiB .. 256 MiB. Each inf_* figure has its peer in the same run: memset for
// fill, memcpy for copy, on 256-byte-aligned host memory like the CPU backend's. The counter
// bytes_per_second is the bytes written per second (for copies: bytes copied).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "infinite/infinite.h"

namespace {

constexpr std::int64_t kMin = std::int64_t{4} << 10;
constexpr std::int64_t kMax = std::int64_t{256} << 20;
constexpr double kMinTime = 0.2;  // seconds per size: the whole run stays well under 30 s

struct Aligned {
    void operator()(void* pointer) const { std::free(pointer); }
};
using HostMemory = std::unique_ptr<void, Aligned>;

HostMemory host_memory(std::int64_t bytes) {
    void* pointer = std::aligned_alloc(256, static_cast<std::size_t>(bytes));
    if (pointer != nullptr) {
        std::memset(pointer, 1, static_cast<std::size_t>(bytes));  // fault the pages in before timing
    }
    return HostMemory(pointer);
}

// A device and buffers for one benchmark; reports failures through the State.
class Fixture {
public:
    Fixture(benchmark::State& state, inf_device_kind kind, int buffers) : state_(state) {
        if (!check(inf_device_create(kind, 0, &device_))) {
            return;
        }
        const auto bytes = static_cast<std::uint64_t>(state.range(0));
        for (int i = 0; i < buffers; ++i) {
            if (!check(inf_buffer_create(device_, bytes, &buffers_[i]))) {
                return;
            }
            const std::uint8_t one = 1;
            if (!check(inf_buffer_fill(buffers_[i], 0, &one, 1, bytes)) || !check(inf_device_synchronize(device_))) {
                return;
            }
        }
        ready_ = true;
    }
    ~Fixture() {
        for (inf_buffer* buffer : buffers_) {
            inf_buffer_destroy(buffer);
        }
        inf_device_destroy(device_);
    }
    Fixture(const Fixture&) = delete;
    Fixture& operator=(const Fixture&) = delete;

    bool ready() const { return ready_; }
    inf_device* device() const { return device_; }
    inf_buffer* buffer(int i) const { return buffers_[i]; }

    bool check(inf_status status) {
        if (status != INF_STATUS_OK) {
            state_.SkipWithError(inf_last_error());
            ready_ = false;
            return false;
        }
        return true;
    }

private:
    benchmark::State& state_;
    inf_device* device_ = nullptr;
    inf_buffer* buffers_[2] = {nullptr, nullptr};
    bool ready_ = false;
};

void set_bytes(benchmark::State& state) {
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

// Times call() once per iteration, each followed by inf_device_synchronize when `synchronize`; stops at the
// first failure.
template <typename Call>
void time_calls(benchmark::State& state, Fixture& fixture, bool synchronize, Call call) {
    for (auto _ : state) {
        if (!fixture.check(call())) {
            break;
        }
        if (synchronize && !fixture.check(inf_device_synchronize(fixture.device()))) {
            break;
        }
    }
    set_bytes(state);
}

void BM_InfFill(benchmark::State& state, inf_device_kind kind) {
    Fixture fixture(state, kind, 1);
    if (!fixture.ready()) {
        return;
    }
    const auto count = static_cast<std::uint64_t>(state.range(0)) / 4;
    const std::uint32_t nan = 0x7FC00000U;
    time_calls(state, fixture, kind != INF_DEVICE_KIND_CPU,
               [&] { return inf_buffer_fill(fixture.buffer(0), 0, &nan, 4, count); });
}

void BM_InfCopy(benchmark::State& state, inf_device_kind kind) {
    Fixture fixture(state, kind, 2);
    if (!fixture.ready()) {
        return;
    }
    const auto bytes = static_cast<std::uint64_t>(state.range(0));
    time_calls(state, fixture, kind != INF_DEVICE_KIND_CPU,
               [&] { return inf_buffer_copy(fixture.buffer(1), 0, fixture.buffer(0), 0, bytes); });
}

// Host <-> device through inf_buffer_write / inf_buffer_read, given as `transfer` (CUDA only).
template <typename Transfer>
void host_transfer(benchmark::State& state, inf_device_kind kind, Transfer transfer) {
    Fixture fixture(state, kind, 1);
    HostMemory host = host_memory(state.range(0));
    if (!fixture.ready() || !host) {
        return;
    }
    const auto bytes = static_cast<std::uint64_t>(state.range(0));
    time_calls(state, fixture, false, [&] { return transfer(fixture.buffer(0), 0, host.get(), bytes); });
}

void BM_InfWrite(benchmark::State& state, inf_device_kind kind) { host_transfer(state, kind, inf_buffer_write); }
void BM_InfRead(benchmark::State& state, inf_device_kind kind) { host_transfer(state, kind, inf_buffer_read); }

void BM_Memset(benchmark::State& state) {
    HostMemory memory = host_memory(state.range(0));
    if (!memory) {
        state.SkipWithError("aligned_alloc failed");
        return;
    }
    for (auto _ : state) {
        std::memset(memory.get(), 0x7F, static_cast<std::size_t>(state.range(0)));
        benchmark::DoNotOptimize(memory.get());
        benchmark::ClobberMemory();
    }
    set_bytes(state);
}

void BM_Memcpy(benchmark::State& state) {
    HostMemory from = host_memory(state.range(0));
    HostMemory to = host_memory(state.range(0));
    if (!from || !to) {
        state.SkipWithError("aligned_alloc failed");
        return;
    }
    for (auto _ : state) {
        std::memcpy(to.get(), from.get(), static_cast<std::size_t>(state.range(0)));
        benchmark::DoNotOptimize(to.get());
        benchmark::ClobberMemory();
    }
    set_bytes(state);
}

void sizes(benchmark::internal::Benchmark* benchmark) {
    benchmark->RangeMultiplier(16)->Range(kMin, kMax)->MinTime(kMinTime)->UseRealTime();
}

}  // namespace

void register_buffer_benchmarks() {
    // Peers next to each other so the output reads as pairs.
    sizes(benchmark::RegisterBenchmark("cpu/inf_buffer_fill", BM_InfFill, INF_DEVICE_KIND_CPU));
    sizes(benchmark::RegisterBenchmark("cpu/memset", BM_Memset));
    sizes(benchmark::RegisterBenchmark("cpu/inf_buffer_copy", BM_InfCopy, INF_DEVICE_KIND_CPU));
    sizes(benchmark::RegisterBenchmark("cpu/memcpy", BM_Memcpy));
    // Silent probe: the loader's own log line says why CUDA is unavailable, if it is.
    inf_set_log_level(INF_LOG_LEVEL_ERROR);
    const bool cuda = inf_backend_load(INF_DEVICE_KIND_CUDA) == INF_STATUS_OK;
    inf_set_log_level(INF_LOG_LEVEL_WARNING);
    if (cuda) {
        sizes(benchmark::RegisterBenchmark("cuda/inf_buffer_fill", BM_InfFill, INF_DEVICE_KIND_CUDA));
        sizes(benchmark::RegisterBenchmark("cuda/inf_buffer_copy", BM_InfCopy, INF_DEVICE_KIND_CUDA));
        sizes(benchmark::RegisterBenchmark("cuda/inf_buffer_write", BM_InfWrite, INF_DEVICE_KIND_CUDA));
        sizes(benchmark::RegisterBenchmark("cuda/inf_buffer_read", BM_InfRead, INF_DEVICE_KIND_CUDA));
    }
}
