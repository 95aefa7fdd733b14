// What the fake CUDA plug-in (fake_cuda_plugin.cpp) reports to the tests through inf_fake_cuda_stats.
#pragma once

#include <cstdint>

extern "C" {

struct inf_fake_cuda_stats_t {
    std::int64_t live_allocations;
    std::uint64_t bytes_used[2];
    // Calls where the core passed a pointer outside an allocation, the wrong ordinal, and so on.
    std::int64_t bad_calls;
    std::int64_t synchronize_calls;
    std::int64_t peer_copies;
};

typedef void (*inf_fake_cuda_stats_fn)(inf_fake_cuda_stats_t* out);
}
