# INFINITE_CUDA=AUTO|ON|OFF: decide whether the CUDA plug-in (libinfinite_cuda.so) is built, and with what.
#
# Sets INFINITE_CUDA_ENABLED (ON/OFF), INFINITE_CUDA_DESCRIPTION (for inf_build_info) and, when enabled,
# enables the CUDA language with CMAKE_CUDA_ARCHITECTURES = INFINITE_CUDA_ARCHS and finds CUDAToolkit.
#
# nvcc refuses host compilers newer than it knows (CUDA 11.8 accepts g++ <= 11, Debian 12 ships g++ 12).
# Unless the user gave CMAKE_CUDA_HOST_COMPILER (or $CUDAHOSTCXX), we compile a one-line .cu file with
# nvcc's default host compiler and, if nvcc rejects it, try older g++ and then clang++ until one works.
# check_language(CUDA) runs a separate CMake project that does not see our cache, so the choice is
# handed to it through $CUDAHOSTCXX (and nvcc through $CUDACXX).
include_guard(GLOBAL)
include(CheckLanguage)

set(INFINITE_CUDA_ENABLED OFF)
set(INFINITE_CUDA_DESCRIPTION "not built")

# Compiles a trivial kernel with nvcc (and -ccbin host when given); out_ok is TRUE on success and
# out_reason holds the first line of nvcc's complaint otherwise.
function(_infinite_probe_nvcc nvcc host out_ok out_reason)
  set(_dir "${CMAKE_BINARY_DIR}/CMakeFiles/InfiniteCudaProbe")
  file(WRITE "${_dir}/probe.cu" "__global__ void infinite_probe(int* p) { *p = 1; }\n")
  set(_args -c "${_dir}/probe.cu" -o "${_dir}/probe.o")
  if(host)
    list(PREPEND _args -ccbin "${host}")
  endif()
  execute_process(COMMAND "${nvcc}" ${_args} RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _out)
  if(_rc EQUAL 0)
    set(${out_ok} TRUE PARENT_SCOPE)
    set(${out_reason} "" PARENT_SCOPE)
  else()
    string(STRIP "${_out}" _out)
    string(REGEX REPLACE "\n.*" "" _first "${_out}")
    if(_first STREQUAL "")
      set(_first "nvcc exited with ${_rc}")
    endif()
    set(${out_ok} FALSE PARENT_SCOPE)
    set(${out_reason} "${_first}" PARENT_SCOPE)
  endif()
endfunction()

# AUTO: report and carry on without CUDA; ON: stop with the reason.
macro(_infinite_cuda_unavailable reason)
  if(INFINITE_CUDA STREQUAL "ON")
    message(FATAL_ERROR "Infinite: INFINITE_CUDA=ON but the CUDA plug-in cannot be built: ${reason}")
  endif()
  set(INFINITE_CUDA_DESCRIPTION "not built (${reason})")
  message(STATUS "Infinite: CUDA plug-in OFF: ${reason}")
endmacro()

if(INFINITE_CUDA STREQUAL "OFF")
  set(INFINITE_CUDA_DESCRIPTION "not built (INFINITE_CUDA=OFF)")
  message(STATUS "Infinite: CUDA plug-in OFF (INFINITE_CUDA=OFF)")
  return()
endif()

# 1. nvcc: the one the user named, else $CUDACXX, else PATH and the usual toolkit folders.
if(CMAKE_CUDA_COMPILER)
  set(_nvcc "${CMAKE_CUDA_COMPILER}")
elseif(DEFINED ENV{CUDACXX} AND NOT "$ENV{CUDACXX}" STREQUAL "")
  set(_nvcc "$ENV{CUDACXX}")
else()
  find_program(INFINITE_NVCC nvcc
    HINTS ENV CUDA_PATH ENV CUDA_HOME ENV CUDAToolkit_ROOT PATH_SUFFIXES bin
    PATHS /usr/local/cuda/bin /opt/cuda/bin)
  set(_nvcc "${INFINITE_NVCC}")
endif()
if(NOT _nvcc)
  _infinite_cuda_unavailable("no CUDA compiler (nvcc) found")
  return()
endif()
# Through symlinks (/bin/nvcc on merged-/usr systems): CMake derives the toolkit's folders from it.
get_filename_component(_nvcc "${_nvcc}" REALPATH)

execute_process(COMMAND "${_nvcc}" --version OUTPUT_VARIABLE _nvcc_out ERROR_VARIABLE _nvcc_out RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0 OR NOT _nvcc_out MATCHES "release ([0-9]+)\\.([0-9]+)")
  _infinite_cuda_unavailable("${_nvcc} --version failed")
  return()
endif()
set(_nvcc_version "${CMAKE_MATCH_1}.${CMAKE_MATCH_2}")

# 2. Host compiler.
if(CMAKE_CUDA_HOST_COMPILER AND NOT CMAKE_CUDA_HOST_COMPILER STREQUAL INFINITE_CUDA_AUTO_HOST_COMPILER)
  set(_host "${CMAKE_CUDA_HOST_COMPILER}")
  set(_host_why "given by CMAKE_CUDA_HOST_COMPILER")
elseif(NOT CMAKE_CUDA_HOST_COMPILER AND DEFINED ENV{CUDAHOSTCXX} AND NOT "$ENV{CUDAHOSTCXX}" STREQUAL "")
  set(_host "$ENV{CUDAHOSTCXX}")
  set(_host_why "given by \$CUDAHOSTCXX")
elseif(CMAKE_CUDA_HOST_COMPILER)
  # Chosen by an earlier configure of this tree: keep it (and its reason) without probing again.
  set(_host "${CMAKE_CUDA_HOST_COMPILER}")
  set(_host_why "${INFINITE_CUDA_AUTO_HOST_REASON}")
else()
  _infinite_probe_nvcc("${_nvcc}" "" _ok _default_reason)
  if(_ok)
    set(_host "")
    set(_host_why "nvcc's default")
  else()
    set(_candidates g++-14 g++-13 g++-12 g++-11 g++-10 g++-9
                    clang++-17 clang++-16 clang++-15 clang++-14 clang++-13 clang++)
    set(_host "")
    foreach(_name IN LISTS _candidates)
      find_program(_candidate_path "${_name}" NO_CACHE)
      if(_candidate_path)
        _infinite_probe_nvcc("${_nvcc}" "${_candidate_path}" _ok _unused)
        if(_ok)
          set(_host "${_candidate_path}")
          break()
        endif()
      endif()
      unset(_candidate_path)
    endforeach()
    if(NOT _host)
      _infinite_cuda_unavailable("nvcc ${_nvcc_version} accepts no installed host compiler (${_default_reason})")
      return()
    endif()
    set(_host_why "chosen automatically: nvcc ${_nvcc_version} rejects its default host compiler: ${_default_reason}")
    set(INFINITE_CUDA_AUTO_HOST_COMPILER "${_host}" CACHE INTERNAL "host compiler chosen by InfiniteCuda.cmake")
    set(INFINITE_CUDA_AUTO_HOST_REASON "${_host_why}" CACHE INTERNAL "why")
    set(CMAKE_CUDA_HOST_COMPILER "${_host}" CACHE FILEPATH "CUDA host compiler" FORCE)
  endif()
endif()

# 3. Architectures: 80 (A100) and 90 (H100); 90a (Hopper-only instructions) where nvcc knows it (>= 12).
if(_nvcc_version VERSION_GREATER_EQUAL 12.0)
  set(_default_archs "80;90;90a")
else()
  set(_default_archs "80;90")
endif()
set(INFINITE_CUDA_ARCHS "${_default_archs}" CACHE STRING "CUDA architectures of the plug-in (CMAKE_CUDA_ARCHITECTURES)")
set(CMAKE_CUDA_ARCHITECTURES "${INFINITE_CUDA_ARCHS}")

# 4. Let CMake check the whole toolchain (in a sub-project, hence the environment variables).
set(ENV{CUDACXX} "${_nvcc}")
if(_host)
  set(ENV{CUDAHOSTCXX} "${_host}")
endif()
check_language(CUDA)
if(NOT CMAKE_CUDA_COMPILER)
  _infinite_cuda_unavailable("CMake cannot use nvcc ${_nvcc_version} (${_nvcc}); see CMakeFiles/CMakeError.log")
  return()
endif()
enable_language(CUDA)
find_package(CUDAToolkit)
if(NOT CUDAToolkit_FOUND OR NOT TARGET CUDA::cudart_static)
  _infinite_cuda_unavailable("nvcc ${_nvcc_version} works but the CUDA toolkit's static runtime (CUDA::cudart_static) was not found")
  return()
endif()

set(CMAKE_CUDA_STANDARD 17)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)
set(CMAKE_CUDA_EXTENSIONS OFF)

if(_host)
  get_filename_component(_host_name "${_host}" NAME)
else()
  set(_host_name "nvcc's default")
endif()
set(INFINITE_CUDA_ENABLED ON)
set(INFINITE_CUDA_NVCC_VERSION "${_nvcc_version}")
set(INFINITE_CUDA_DESCRIPTION
    "plug-in built for archs ${INFINITE_CUDA_ARCHS} with nvcc ${_nvcc_version} (host compiler ${_host_name})")
if(_host)
  message(STATUS "Infinite: CUDA plug-in ON: nvcc ${_nvcc_version} (${_nvcc}), host compiler ${_host} (${_host_why}), archs ${INFINITE_CUDA_ARCHS}")
else()
  message(STATUS "Infinite: CUDA plug-in ON: nvcc ${_nvcc_version} (${_nvcc}), host compiler: nvcc's default, archs ${INFINITE_CUDA_ARCHS}")
endif()
