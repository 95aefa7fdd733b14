// Looking up inf_comm handles. The registry holds every communicator as shared_ptr<Communicator> (the base),
// so any code that gets an inf_comm* (the step exchange too) finds it here with the usual checks.
#pragma once

#include <memory>

#include "comm/communicator.h"
#include "core/handle_registry.h"

namespace inf {

// NULL_POINTER / INVALID_HANDLE naming argument, as find_handle.
inline std::shared_ptr<Communicator> find_communicator(const inf_comm* handle, const char* argument) {
    return find_handle<Communicator>(handle, HandleKind::comm, argument);
}

}  // namespace inf
