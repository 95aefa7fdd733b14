# INFINITE_MPI: find MPI (C) for the MPI plug-in. Sets INFINITE_HAVE_MPI (0/1) and INFINITE_MPI_DESCRIPTION
# (build info). Where MPI is found, native/src/comm/mpi builds libinfinite_mpi.so, the only library linked
# to MPI::MPI_C (the core loads it at run time), and the tests run the MPI suite under
# ${MPIEXEC_EXECUTABLE} (FindMPI's mpirun / mpiexec).
include_guard(GLOBAL)

set(INFINITE_HAVE_MPI 0)
if(INFINITE_MPI STREQUAL "OFF")
  set(INFINITE_MPI_DESCRIPTION "disabled (INFINITE_MPI=OFF)")
else()
  if(INFINITE_MPI STREQUAL "ON")
    find_package(MPI COMPONENTS C REQUIRED)
  else()
    find_package(MPI COMPONENTS C QUIET)
  endif()
  if(MPI_C_FOUND AND TARGET MPI::MPI_C)
    set(INFINITE_HAVE_MPI 1)
    set(INFINITE_MPI_DESCRIPTION "found (MPI ${MPI_C_VERSION}; plug-in libinfinite_mpi.so)")
  else()
    set(INFINITE_MPI_DESCRIPTION "not found")
  endif()
endif()
message(STATUS "Infinite: MPI ${INFINITE_MPI_DESCRIPTION}")
