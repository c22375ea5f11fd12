// File: kernels/common/cuda_check.cpp
#include "kernels/common/cuda_check.h"

#include <unistd.h>

#include "runtime/base/check.h"

namespace albion::kernels {

void throw_cuda_error(cudaError_t status, const char* call, const char* file, int line) {
  int device = -1;
  cudaGetDevice(&device);
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  throw SystemError(str_cat("CUDA error ", cudaGetErrorName(status), " (",
                            cudaGetErrorString(status), ") in ", call, " on device ", device,
                            " of host ", host, " [", file, ":", line, "]"));
}

}  // namespace albion::kernels
