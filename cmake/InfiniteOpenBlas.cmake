# OpenBLAS (CBLAS interface) for the CPU model layers' GEMMs. Required: the CPU forward step has no
# fallback GEMM, so a missing library stops the configure with the package to install.
# Sets INFINITE_OPENBLAS_INCLUDE_DIR (cblas.h) and INFINITE_OPENBLAS_LIBRARY; the core includes the header
# and loads the library at run time (native/src/model/blas.h), so no target links it.
include_guard(GLOBAL)

# Debian/Ubuntu put the pthread build's cblas.h under openblas-pthread/; other layouts have it
# directly in the include path (or under openblas/).
find_path(INFINITE_OPENBLAS_INCLUDE_DIR cblas.h
  PATHS /usr/include/x86_64-linux-gnu/openblas-pthread /usr/include/aarch64-linux-gnu/openblas-pthread
        /usr/include/openblas /usr/local/include/openblas /opt/OpenBLAS/include
  NO_DEFAULT_PATH)
find_path(INFINITE_OPENBLAS_INCLUDE_DIR cblas.h PATH_SUFFIXES openblas)
find_library(INFINITE_OPENBLAS_LIBRARY NAMES openblas
  PATHS /usr/lib/x86_64-linux-gnu/openblas-pthread /usr/lib/aarch64-linux-gnu/openblas-pthread /opt/OpenBLAS/lib)

if(NOT INFINITE_OPENBLAS_INCLUDE_DIR OR NOT INFINITE_OPENBLAS_LIBRARY)
  message(FATAL_ERROR "Infinite: OpenBLAS not found (cblas.h: ${INFINITE_OPENBLAS_INCLUDE_DIR}, "
    "library: ${INFINITE_OPENBLAS_LIBRARY}). Install libopenblas-dev (./build.sh deps) or set "
    "INFINITE_OPENBLAS_INCLUDE_DIR and INFINITE_OPENBLAS_LIBRARY.")
endif()

message(STATUS "Infinite: OpenBLAS ${INFINITE_OPENBLAS_LIBRARY} (cblas.h in ${INFINITE_OPENBLAS_INCLUDE_DIR})")
