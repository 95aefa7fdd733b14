// The MPI communicator: one instance per process under mpirun, MPI_COMM_WORLD, host memory.
//
// The core never links MPI: it dlopen()s the plug-in libinfinite_mpi.so (src/comm/mpi/, built where CMake
// finds MPI) from the directory of libinfinite.so, or from $INFINITE_MPI_PLUGIN (a full path). The plug-in
// exports one C entry returning a table of plain-C functions (mpi_plugin_abi.h); a missing plug-in or libmpi
// is BACKEND_UNAVAILABLE naming the library and the loader's reason.
#pragma once

#include <memory>

#include "comm/communicator.h"

namespace inf {

// MPI is initialised by the first endpoint if nobody has, and finalised when the last endpoint created by
// this library goes (only when this library initialised it).
std::shared_ptr<Communicator> create_mpi_communicator();

}  // namespace inf
