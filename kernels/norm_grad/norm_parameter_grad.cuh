// File: kernels/norm_grad/norm_parameter_grad.cuh
// The gradients of a norm's per-column parameters, summed over rows (LayerNorm's weight and bias,
// RMSNorm's weight), from the forward's per-row statistics:
//   xhat[r, c]     = (x[r, c] - mean[r]) * rstd[r]      (mean = 0 for RMSNorm, rstd = 1/rms)
//   d_weight[c]    = sum_r dy[r, c] * xhat[r, c]
//   d_bias[c]      = sum_r dy[r, c]
// One read of dy and x, in 16-byte packs (eager torch would cast, subtract, multiply and reduce in
// ~8 passes): a block sums 32 packs of columns over one segment of rows into fp32 partials, a
// second launch adds the segments in a fixed order (deterministic).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/common/dtype.h"

namespace albion::kernels {

struct NormParameterGradParams {
  const void* grad_output = nullptr;  // [rows, cols]
  const void* input = nullptr;        // [rows, cols]
  const float* mean = nullptr;        // [rows]; nullptr for RMSNorm
  const float* rstd = nullptr;        // [rows]
  float* partials = nullptr;          // [1 + (grad_bias != nullptr), norm_parameter_grad_segments(rows), cols] scratch
  float* grad_weight = nullptr;       // [cols]
  float* grad_bias = nullptr;         // [cols]; nullptr: not wanted
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  DType dtype = DType::kFloat32;
};

// How many row segments the first launch splits the rows into (sizes the partials).
std::int64_t norm_parameter_grad_segments(std::int64_t rows);

void launch_norm_parameter_grad(const NormParameterGradParams& params, cudaStream_t stream);

// CPU reference in T (float, or double for finite-difference tests), sums in double.
// mean may be nullptr (RMSNorm), grad_bias too.
template <typename T>
void norm_parameter_grad_reference(const T* grad_output, const T* input, const T* mean, const T* rstd,
                                   T* grad_weight, T* grad_bias, std::int64_t rows, std::int64_t cols);

}  // namespace albion::kernels
