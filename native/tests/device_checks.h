// Behaviour every device kind must show, written once and run on the CPU (api tests), on the fake CUDA
// plug-in (plugin tests, any machine) and on real GPUs (cuda tests, where one exists).
#pragma once

#include <cstdint>

#include "infinite/infinite.h"

namespace inf_test {

// Random data written at several offsets reads back identically.
void check_round_trip(inf_device* device);
// inf_buffer_fill with 1, 2, 4 and 8-byte patterns at aligned and misaligned offsets, checked element by
// element, with the bytes around the filled range unchanged.
void check_fill_patterns(inf_device* device);
// Copies inside one buffer of `bytes` bytes, overlapping forwards and backwards, match std::memmove.
void check_overlapping_copy(inf_device* device, std::uint64_t bytes);
// Copies from a buffer on `from` to a buffer on `to`, at odd offsets.
void check_copy_between(inf_device* from, inf_device* to);
// A buffer stays usable after its device handle is destroyed.
void check_buffer_outlives_device(inf_device_kind kind, std::int32_t ordinal);
// Buffers created on one thread can be destroyed on another.
void check_destroy_on_other_thread(inf_device* device);

}  // namespace inf_test
