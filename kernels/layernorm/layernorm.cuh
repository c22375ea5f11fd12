// File: kernels/layernorm/layernorm.cuh
// LayerNorm over the last dimension (GPT-2's), one block per row:
//   mean = mean(x);  rstd = 1 / sqrt(mean((x - mean)^2) + eps);  xhat = (x - mean) rstd
//   y = xhat w + b
// Backward, g = w dy:  dx = rstd (g - mean(g) - xhat mean(g xhat));  dw = sum dy xhat;  db = sum dy
// (the kernel computes dx per row from the saved mean and rstd; the torch layer sums dw and db).
// fp32 or bf16 x, weight and bias of x's dtype, fp32 statistics.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/common/dtype.h"

namespace albion::kernels {

struct LayerNormParams {
  const void* input = nullptr;
  const void* weight = nullptr;
  const void* bias = nullptr;         // forward only
  const void* grad_output = nullptr;  // backward only
  void* output = nullptr;             // forward: y; backward: dx
  float* mean = nullptr;              // [rows], written by forward, read by backward
  float* rstd = nullptr;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  float eps = 1e-5f;
  DType dtype = DType::kFloat32;
};

void launch_layernorm_forward(const LayerNormParams& params, cudaStream_t stream);
void launch_layernorm_backward(const LayerNormParams& params, cudaStream_t stream);

// CPU references in T (float, or double for finite-difference tests).
template <typename T>
void layernorm_forward_reference(const T* input, const T* weight, const T* bias, T* output, T* mean, T* rstd,
                                 std::int64_t rows, std::int64_t cols, T eps);
template <typename T>
void layernorm_backward_reference(const T* grad_output, const T* input, const T* weight, const T* mean,
                                  const T* rstd, T* grad_input, std::int64_t rows, std::int64_t cols);

}  // namespace albion::kernels
