// File: kernels/layernorm/layernorm.cuh
// LayerNorm over the last dimension (GPT-2's), one block per row:
//   mean = mean(x);  rstd = 1 / sqrt(mean((x - mean)^2) + eps);  xhat = (x - mean) rstd
//   y = xhat w + b
// Backward, g = w dy:  dx = rstd (g - mean(g) - xhat mean(g xhat));  dw = sum dy xhat;  db = sum dy
// (the kernel computes dx per row from the saved mean and rstd and, for rows held in registers,
// can sum dw and db in the same pass: see LayerNormParams; else the torch layer sums them apart).
// fp32 or bf16 x, weight and bias of x's dtype, fp32 statistics; y (and so dy) in x's dtype, or
// in bf16 for fp32 x (bf16_output). Optionally the residual add before the norm, s = x + r, in the
// same pass (residual, sum, grad_sum: Note [The residual add in the norm], layernorm_torch.cpp).
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
  // fp32 x only: y in bf16 (forward) and dy in bf16 (backward), the operand of a bf16 matrix
  // product written as the product's own cast would round it (Note [A norm writes its product's
  // operand], layernorm_torch.cpp); dx stays fp32.
  bool bf16_output = false;
  // Forward, optional: a residual r (in y's dtype, or bf16 beside fp32 x and y: bf16_residual)
  // added to x first; the kernel writes s = x + r to `sum` (in x's dtype, rounded as torch's add
  // rounds) and normalises s, not x.
  const void* residual = nullptr;
  void* sum = nullptr;
  bool bf16_residual = false;
  // Backward, optional: x is then s, and s's own gradient (in x's dtype, from s's other reader) is
  // added to dx, rounded as autograd's sum of the two would round.
  const void* grad_sum = nullptr;
  // Backward, optional, where layernorm_backward_parameter_segments allows it: dw and db summed in
  // the same pass, which then reads dy and x once for all three gradients. Block b takes row
  // segment b of parameter_segments and writes its rows' sums to parameter_partials[0, b, :] (dw)
  // and [1, b, :] (db); a second launch per parameter adds the segments in order (deterministic).
  float* grad_weight = nullptr;         // [cols]; nullptr: neither summed here
  float* grad_bias = nullptr;           // [cols]
  float* parameter_partials = nullptr;  // [2, parameter_segments, cols] scratch
  std::int64_t parameter_segments = 0;
};

void launch_layernorm_forward(const LayerNormParams& params, cudaStream_t stream);
void launch_layernorm_backward(const LayerNormParams& params, cudaStream_t stream);

// Row segments for summing dw and db in launch_layernorm_backward's pass (sizes
// parameter_partials), on a device of `multiprocessors` (0: unknown, as on the CPU emulator): as
// many as the device runs at once. 0 where the pass cannot (rows too long for registers, or not in
// 16-byte packs).
std::int64_t layernorm_backward_parameter_segments(const LayerNormParams& params, int multiprocessors);

// CPU references in T (float, or double for finite-difference tests).
template <typename T>
void layernorm_forward_reference(const T* input, const T* weight, const T* bias, T* output, T* mean, T* rstd,
                                 std::int64_t rows, std::int64_t cols, T eps);
template <typename T>
void layernorm_backward_reference(const T* grad_output, const T* input, const T* weight, const T* mean,
                                  const T* rstd, T* grad_input, std::int64_t rows, std::int64_t cols);

}  // namespace albion::kernels
