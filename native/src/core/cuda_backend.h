// The Backend for CUDA devices: forwards to the plug-in's C function table (plugin_abi.h) and turns
// its status + message into inf::Error.
#pragma once

#include <cstdint>
#include <memory>

#include "core/backend.h"
#include "core/plugin_abi.h"

namespace inf {

// api must stay valid for the life of the process (the plug-in is never unloaded).
std::unique_ptr<Backend> make_plugin_backend(const inf_plugin_api* api, std::int32_t device_count);

}  // namespace inf
