// A host implementation of the plug-in's model step (core/plugin_model_abi.h) for the fake CUDA plug-in's
// "model" mode: it reads the step's description exactly as the ABI documents it (fused Q/K/V and gate/up
// matrices, f32 or bf16 weights, the packed plan arrays, the pool's layers), so a test can compare the core's
// CUDA model path (weight upload, plan packing, workspace sizing) with the CPU step without a GPU. Float32
// pools only; every device pointer goes through translate, which refuses ranges outside an allocation.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/plugin_model_abi.h"

// The host address of [pointer, pointer + bytes) on ordinal, or null when it is not inside one allocation.
using FakeTranslate = unsigned char* (*)(std::int32_t ordinal, const void* pointer, std::uint64_t bytes);

// Bytes of workspace fake_model_step wants (it checks the core passed them): the residual stream's.
std::uint64_t fake_model_step_workspace_bytes(const inf_plugin_model_step& p);

// INF_STATUS_OK, or a status with a message in error (INF_PLUGIN_ERROR_CAPACITY bytes); bad_pointer is set
// when the core passed a pointer or range outside the fake's allocations.
inf_status fake_model_step(std::int32_t ordinal, const inf_plugin_model_step& p, FakeTranslate translate, char* error,
                           bool* bad_pointer);
