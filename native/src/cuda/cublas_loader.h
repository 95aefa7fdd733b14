// cuBLAS, loaded at run time (dlopen) rather than linked: the plug-in links the CUDA runtime statically
// and must dlopen on machines with only a driver (init then reports BACKEND_UNAVAILABLE); a link-time
// dependency on libcublas.so would make the plug-in itself fail to load there. Only the model step needs
// cuBLAS, so a missing library is that call's error, naming the library.
//
// The types and enums come from the toolkit's cublas_v2.h; only the few entry points are looked up.
#pragma once

#include <cublas_v2.h>

#include <cstddef>

namespace inf::cuda {

// cublasGemmEx with a cublasComputeType_t (C++ sees an overload taking cudaDataType_t too).
using CublasGemmEx = cublasStatus_t (*)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                                        const void*, const void*, cudaDataType_t, int, const void*, cudaDataType_t, int,
                                        const void*, void*, cudaDataType_t, int, cublasComputeType_t, cublasGemmAlgo_t);

struct CublasApi {
    decltype(&cublasCreate_v2) create = nullptr;
    decltype(&cublasDestroy_v2) destroy = nullptr;
    decltype(&cublasSetStream_v2) set_stream = nullptr;
    CublasGemmEx gemm_ex = nullptr;
};

// The loaded library (first call loads it; thread-safe), or null with the reason in why (static text
// or a pointer into a process-lifetime buffer).
const CublasApi* cublas_api(const char** why) noexcept;

// "CUBLAS_STATUS_INVALID_VALUE", ...
const char* cublas_status_name(cublasStatus_t status) noexcept;

}  // namespace inf::cuda
