// File: kernels/common/cuda_check.h
// ALBION_CUDA_CHECK(cudaMemcpyAsync(...)): throws albion::SystemError naming the call, the CUDA
// error, the device and the host, instead of carrying on with a sticky error.
#pragma once

#include <cuda_runtime_api.h>

#include "runtime/base/error.h"

namespace albion::kernels {

[[noreturn]] void throw_cuda_error(cudaError_t status, const char* call, const char* file,
                                   int line);

}  // namespace albion::kernels

#define ALBION_CUDA_CHECK(call)                                                \
  do {                                                                         \
    cudaError_t albion_cuda_status_ = (call);                                  \
    if (albion_cuda_status_ != cudaSuccess) [[unlikely]] {                     \
      ::albion::kernels::throw_cuda_error(albion_cuda_status_, #call, __FILE__, __LINE__); \
    }                                                                          \
  } while (false)
