// In-process communicator round trips through the C ABI: rank 0 sends a message to rank 1, an echo thread
// sends it back, rank 0 receives it. 4 KiB shows the latency of one round trip (two sends, two receives,
// two wake-ups of a waiting thread), 4 MiB the copy bandwidth (each message is copied into the receiver's
// queue and out again). bytes_per_second counts both directions.
// Run: build/native/bin/infinite_bench --benchmark_filter=comm/
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "infinite/infinite.h"

namespace {

void BM_InprocRoundTrip(benchmark::State& state) {
    const auto bytes = static_cast<std::uint64_t>(state.range(0));
    inf_comm_group* group = nullptr;
    inf_comm* ranks[2] = {nullptr, nullptr};
    if (inf_comm_group_create(2, &group) != INF_STATUS_OK || inf_comm_create_inproc(group, 0, &ranks[0]) != INF_STATUS_OK ||
        inf_comm_create_inproc(group, 1, &ranks[1]) != INF_STATUS_OK) {
        state.SkipWithError(inf_last_error());
        return;
    }
    // A zero-byte message ends the echo loop.
    std::thread echo([&] {
        std::vector<unsigned char> message(bytes);
        for (;;) {
            std::uint64_t length = 0;
            if (inf_comm_recv(ranks[1], 0, 0, message.data(), bytes, &length) != INF_STATUS_OK || length == 0 ||
                inf_comm_send(ranks[1], 0, 0, message.data(), length) != INF_STATUS_OK) {
                return;
            }
        }
    });
    std::vector<unsigned char> out(bytes, 1);
    std::vector<unsigned char> in(bytes);
    for (auto _ : state) {
        std::uint64_t length = 0;
        if (inf_comm_send(ranks[0], 1, 0, out.data(), bytes) != INF_STATUS_OK ||
            inf_comm_recv(ranks[0], 1, 0, in.data(), bytes, &length) != INF_STATUS_OK) {
            state.SkipWithError(inf_last_error());
            break;
        }
        benchmark::DoNotOptimize(in.data());
    }
    inf_comm_send(ranks[0], 1, 0, nullptr, 0);
    echo.join();
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * 2 * static_cast<std::int64_t>(bytes));
    inf_comm_destroy(ranks[0]);
    inf_comm_destroy(ranks[1]);
    inf_comm_group_destroy(group);
}

BENCHMARK(BM_InprocRoundTrip)->Name("comm/inproc_round_trip")->Arg(4 << 10)->Arg(4 << 20)->MinTime(0.2)->UseRealTime();

}  // namespace
