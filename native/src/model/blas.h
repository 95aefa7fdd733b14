// The GEMM / GEMV of the model layers, from OpenBLAS loaded at run time (dlopen) on first use.
//
// Why not link it: OpenBLAS picks its kernels when it loads, and on CPUs it does not recognise (virtual
// machines report a generic "Intel Xeon Processor") DYNAMIC_ARCH builds fall back to the SSE3 "Prescott"
// kernels, 2-4x slower here. Loading it ourselves lets the core set OPENBLAS_CORETYPE from the features
// it detects (unless the user set it) before OpenBLAS initialises; and a machine without OpenBLAS still
// loads libinfinite.so, failing only model creation with a message naming the library.
#pragma once

#include <cstdint>

namespace inf::blas {

// Loads OpenBLAS once (and sets its thread count to the thread pool's); throws BACKEND_UNAVAILABLE
// naming the libraries tried and the loader's reason when it cannot.
void require();

// "SkylakeX", "Haswell", ...: the kernels OpenBLAS chose (after require()).
const char* core_name() noexcept;

// y[rows][out] = x[rows][in] * w^T + beta * y, w row-major [out][in].
void linear(const float* x, std::int64_t rows, std::int64_t in, const float* w, std::int64_t out, float* y, float beta);

}  // namespace inf::blas
