#include "core/build_info.h"

#include "build_config.h"

// The instruction sets the compiler may use everywhere in this build (no -march: the library runs on
// any CPU of the architecture; faster kernels are chosen at run time from inf_device_info.features).
#if defined(__x86_64__)
#define INF_ARCH "x86_64"
#elif defined(__aarch64__)
#define INF_ARCH "aarch64"
#else
#define INF_ARCH "unknown architecture"
#endif
#if defined(__SSE2__)
#define INF_ISA_SSE2 " sse2"
#else
#define INF_ISA_SSE2 ""
#endif
#if defined(__AVX__)
#define INF_ISA_AVX " avx"
#else
#define INF_ISA_AVX ""
#endif
#if defined(__AVX2__)
#define INF_ISA_AVX2 " avx2"
#else
#define INF_ISA_AVX2 ""
#endif
#if defined(__FMA__)
#define INF_ISA_FMA " fma"
#else
#define INF_ISA_FMA ""
#endif
#if defined(__F16C__)
#define INF_ISA_F16C " f16c"
#else
#define INF_ISA_F16C ""
#endif
#if defined(__AVX512F__)
#define INF_ISA_AVX512F " avx512f"
#else
#define INF_ISA_AVX512F ""
#endif
#if defined(__ARM_NEON)
#define INF_ISA_NEON " neon"
#else
#define INF_ISA_NEON ""
#endif

#define INF_STRINGIFY2(x) #x
#define INF_STRINGIFY(x) INF_STRINGIFY2(x)

namespace inf {

namespace {

// One literal, so the call can neither allocate nor fail.
constexpr const char kBuildInfo[] =
    "infinite " INFINITE_VERSION_STRING "\n"
    "compiler: " INFINITE_BUILD_COMPILER " (C++ " INF_STRINGIFY(__cplusplus) ")\n"
    "build type: " INFINITE_BUILD_TYPE "\n"
    "cuda: " INFINITE_CUDA_DESCRIPTION "\n"
    "mpi: " INFINITE_MPI_DESCRIPTION "\n"
    "cpu: " INF_ARCH ", compiled for" INF_ISA_SSE2 INF_ISA_AVX INF_ISA_AVX2 INF_ISA_FMA INF_ISA_F16C INF_ISA_AVX512F
    INF_ISA_NEON "; run-time features per device in inf_device_info.features\n"
    "sanitizers: " INFINITE_SANITIZERS;

}  // namespace

const char* version_string() noexcept {
    return INFINITE_VERSION_STRING;
}

const char* build_info_string() noexcept {
    return kBuildInfo;
}

}  // namespace inf
