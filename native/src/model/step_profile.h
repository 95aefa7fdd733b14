// Wall time of the forward step's phases, summed over a model's steps. Off unless the environment sets
// INFINITE_MODEL_PROFILE=1 (read once); then the model logs the totals at INFO when it is destroyed. For
// finding where a step's time goes (benchmarks), at the cost of two clock reads per phase. A distributed
// step adds "exchange" (packing, sending and waiting for peers' messages) and "serve" (appending peers' K/V
// and the MicroAttention over the parts this instance serves), and counts the bytes it exchanged.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>

namespace inf {

enum class StepPhase { embed, norm, qkv, rope, append, select, attention, output, mlp, head, exchange, serve, count };

class StepProfile {
public:
    static bool enabled() noexcept;

    // Times from construction (or the last lap) to lap(), adding it to phase.
    class Timer {
    public:
        explicit Timer(StepProfile& profile) : profile_(profile), on_(enabled()), last_(now()) {}
        void lap(StepPhase phase) noexcept {
            if (!on_) return;
            const auto t = now();
            profile_.add(phase, t - last_);
            last_ = t;
        }

    private:
        static std::chrono::steady_clock::time_point now() noexcept { return std::chrono::steady_clock::now(); }
        StepProfile& profile_;
        bool on_;
        std::chrono::steady_clock::time_point last_;
    };

    void add(StepPhase phase, std::chrono::steady_clock::duration elapsed) noexcept {
        nanoseconds_[static_cast<std::size_t>(phase)].fetch_add(
            std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count(), std::memory_order_relaxed);
    }
    void count_step() noexcept { steps_.fetch_add(1, std::memory_order_relaxed); }
    // Bytes of step-exchange messages this model's steps sent and received (counted whether or not enabled).
    void count_exchange(std::uint64_t sent, std::uint64_t received) noexcept {
        exchange_sent_.fetch_add(sent, std::memory_order_relaxed);
        exchange_received_.fetch_add(received, std::memory_order_relaxed);
    }
    // Logs "model step profile over N steps: embed x ms/step, ..." when enabled and steps ran.
    void report() const noexcept;

private:
    std::array<std::atomic<std::int64_t>, static_cast<std::size_t>(StepPhase::count)> nanoseconds_{};
    std::atomic<std::int64_t> steps_{0};
    std::atomic<std::uint64_t> exchange_sent_{0}, exchange_received_{0};
};

}  // namespace inf
