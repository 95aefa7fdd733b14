// The plug-in's model step (plugin_model_abi.h): cuBLAS GEMMs, the element-wise kernels of
// model_kernels.cu and the paged-KV kernels (kv_append, attention), all on the legacy default stream.
#pragma once

#include <cstdint>

#include "core/plugin_model_abi.h"
#include "cuda/cuda_error.h"
#include "cuda/paged_kv.h"

namespace inf::cuda {

// Bytes of workspace run_model_step needs for the shape fields of p on a device with sm_count SMs.
std::uint64_t model_step_workspace_bytes(const inf_plugin_model_step& p, int sm_count) noexcept;

// Runs the step on ordinal, which the caller made current; sm_count, max_shared and mode as for
// launch_attention. Every failure is reported into sink naming the operation, the layer and the device.
inf_status run_model_step(int ordinal, const inf_plugin_model_step& p, int sm_count, int max_shared, PrefillMode mode,
                          ErrorSink sink) noexcept;

}  // namespace inf::cuda
