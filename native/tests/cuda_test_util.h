// Helpers shared by the CUDA kernel tests (cuda_attention_test.cpp, cuda_sparse_test.cpp): the NaN
// poison for outputs, random non-zero inputs, and a scope that forces the prefill kernel.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>

namespace inf_test {

// Outputs are filled with this (a quiet NaN) before every kernel: an element it forgets fails the comparison.
constexpr std::uint32_t kNaN = 0x7FC00000u;

// Uniform in +-[0.05, 1): never zero.
inline float random_nonzero(std::mt19937& engine) {
    std::uniform_real_distribution<float> magnitude(0.05f, 1.0f);
    return (engine() & 1u) != 0 ? magnitude(engine) : -magnitude(engine);
}

// Sets INFINITE_CUDA_PREFILL for the scope ("simt", "mma"; null: unset), then restores it.
class PrefillMode {
public:
    explicit PrefillMode(const char* mode) {
        const char* old = std::getenv(kName);
        had_ = old != nullptr;
        if (had_) old_ = old;
        set(mode);
    }
    PrefillMode(const PrefillMode&) = delete;
    PrefillMode& operator=(const PrefillMode&) = delete;
    ~PrefillMode() { set(had_ ? old_.c_str() : nullptr); }

private:
    static void set(const char* value) {
        if (value != nullptr) {
            setenv(kName, value, 1);
        } else {
            unsetenv(kName);
        }
    }
    static constexpr const char* kName = "INFINITE_CUDA_PREFILL";
    bool had_ = false;
    std::string old_;
};

}  // namespace inf_test
