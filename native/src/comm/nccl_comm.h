// The NCCL communicator: device memory of CUDA devices, one rank per instance, over libnccl.so.2 loaded at
// run time (no NVIDIA header or library at build time: the few declarations used are written in
// nccl_comm.cpp). It rides on a bootstrap communicator (MPI or in-process), which it keeps alive: rank 0
// sends the NCCL unique id over it at creation, and every device message is announced on it by a small
// header (tag, bytes), because NCCL itself has neither tags nor probes.
//
// Host memory is not its business: send / recv / probe of host bytes are UNSUPPORTED (use the bootstrap).
//
// NOT RUN: this machine has neither a GPU nor NCCL; only the failure paths are tested (no CUDA device,
// missing library). See nccl_comm.cpp for what a GPU run must check.
#pragma once

#include <cstdint>
#include <memory>

#include "comm/communicator.h"
#include "core/device.h"

namespace inf {

// The bootstrap tags the NCCL communicator uses (reserved range): the unique id, and the device-message headers.
inline constexpr std::int32_t kNcclIdTag = kMaxTag - 1;
inline constexpr std::int32_t kNcclHeaderTag = kMaxTag;

// INVALID_ARGUMENT naming "device" unless it is a CUDA device; BACKEND_UNAVAILABLE naming libnccl.so.2 (or
// libcuda.so.1) and the loader's reason when it cannot be loaded. Collective over bootstrap's ranks.
std::shared_ptr<Communicator> create_nccl_communicator(std::shared_ptr<Communicator> bootstrap,
                                                       std::shared_ptr<Device> device);

}  // namespace inf
