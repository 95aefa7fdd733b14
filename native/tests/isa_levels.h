// The CPU kernels' ISA levels a test can force: every level up to what this CPU supports, and a scope that
// forces one (the dispatch reads the override).
#pragma once

#include <vector>

#include "attention/cpu_isa.h"

namespace inf_test {

inline std::vector<inf::cpu::Isa> isa_levels() {
    using inf::cpu::Isa;
    std::vector<Isa> levels{Isa::scalar};
    if (static_cast<int>(inf::cpu::supported_isa()) >= static_cast<int>(Isa::avx2)) {
        levels.push_back(Isa::avx2);
    }
    if (inf::cpu::supported_isa() == Isa::avx512) {
        levels.push_back(Isa::avx512);
    }
    return levels;
}

// Forces an ISA level for a scope.
struct ForceIsa {
    explicit ForceIsa(inf::cpu::Isa isa) { inf::cpu::set_isa_override(&isa); }
    ~ForceIsa() { inf::cpu::set_isa_override(nullptr); }
    ForceIsa(const ForceIsa&) = delete;
    ForceIsa& operator=(const ForceIsa&) = delete;
};

}  // namespace inf_test
