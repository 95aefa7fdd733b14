// Validation of the exchange of a distributed step (inf_step_exchange): every array and index the step will
// use, before any work or message, so a bad plan fails alone (its peers then time out on it) and leaves the
// pool untouched. Part of check_step (step_checks.h).
#pragma once

#include <cstdint>

#include "infinite/infinite.h"
#include "kv/page_pool.h"
#include "model/step_checks.h"

namespace inf {

// Checks shape.ex against the plan (whose tokens are checked), the pool and shape.comm (rank, size), and
// fills shape.served_rows / served_max_q / served_widest. Throws inf::Error naming the field as
// "plan->exchange-><field>[i]".
void check_exchange(const PagePool& pool, const inf_step_plan& plan, StepShape& shape);

// Whether remote part i sends K and V / served part i receives them (a null flag array: none do).
inline bool part_sends_kv(const inf_step_exchange& ex, std::int32_t i) noexcept {
    return ex.remote_sends_kv != nullptr && ex.remote_sends_kv[i] != 0;
}
inline bool part_receives_kv(const inf_step_exchange& ex, std::int32_t i) noexcept {
    return ex.served_receives_kv != nullptr && ex.served_receives_kv[i] != 0;
}

// Whether sequence s has a remote part that sends K and V (ex checked).
bool remote_sends_kv(const inf_step_exchange& ex, std::int32_t s) noexcept;

}  // namespace inf
