# Build options of the native core and the project-wide defaults every target shares.
include_guard(GLOBAL)

set(INFINITE_CUDA AUTO CACHE STRING
    "Build the CUDA plug-in (libinfinite_cuda.so): AUTO (where a CUDA compiler works), ON (required), OFF")
set_property(CACHE INFINITE_CUDA PROPERTY STRINGS AUTO ON OFF)
set(INFINITE_MPI AUTO CACHE STRING "Look for MPI (C): AUTO, ON (required), OFF")
set_property(CACHE INFINITE_MPI PROPERTY STRINGS AUTO ON OFF)
option(INFINITE_SANITIZE "Build the core and the native tests with AddressSanitizer + UndefinedBehaviorSanitizer" OFF)
option(INFINITE_WERROR "Treat compiler warnings in project code as errors" ON)
option(INFINITE_BUILD_TESTS "Build the native GoogleTest suite (needs GTest)" ON)
option(INFINITE_BUILD_BENCH "Build the native benchmark where Google Benchmark is found" ON)

foreach(_opt INFINITE_CUDA INFINITE_MPI)
  string(TOUPPER "${${_opt}}" ${_opt})
  if(NOT ${_opt} MATCHES "^(AUTO|ON|OFF)$")
    message(FATAL_ERROR "${_opt} must be AUTO, ON or OFF (got '${${_opt}}')")
  endif()
endforeach()

# A single-config generator without a build type would build without optimisation and without NDEBUG.
if(NOT CMAKE_CONFIGURATION_TYPES AND NOT CMAKE_BUILD_TYPE)
  set(CMAKE_BUILD_TYPE Release CACHE STRING "Build type" FORCE)
endif()

set(CMAKE_CXX_STANDARD 20)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
set(CMAKE_CXX_EXTENSIONS OFF)
set(CMAKE_POSITION_INDEPENDENT_CODE ON)

# Only INF_API symbols leave the libraries; everything else stays internal.
set(CMAKE_C_VISIBILITY_PRESET hidden)
set(CMAKE_CXX_VISIBILITY_PRESET hidden)
set(CMAKE_CUDA_VISIBILITY_PRESET hidden)
set(CMAKE_VISIBILITY_INLINES_HIDDEN ON)

# libinfinite.so and libinfinite_cuda.so side by side (the core finds the plug-in next to itself),
# executables in bin/.
set(CMAKE_LIBRARY_OUTPUT_DIRECTORY "${CMAKE_BINARY_DIR}/lib")
set(CMAKE_ARCHIVE_OUTPUT_DIRECTORY "${CMAKE_BINARY_DIR}/lib")
set(CMAKE_RUNTIME_OUTPUT_DIRECTORY "${CMAKE_BINARY_DIR}/bin")
