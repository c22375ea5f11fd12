// File: kernels/gelu/gelu_bias.cuh
// GELU (tanh approximation, GPT-2's) of x + bias, fused: z = x + b (b broadcast over rows),
//   y  = 0.5 z (1 + tanh(k (z + 0.044715 z^3))),  k = sqrt(2 / pi)
//   dz = dy (0.5 (1 + t) + 0.5 z (1 - t^2) k (1 + 3 * 0.044715 z^2)),  t = tanh(...)
// dx = dz and dbias = sum of dz over rows, in the same pass over memory. x: [rows, cols] fp32 or
// bf16; bias fp32; fp32 arithmetic (dbias sums dz before it is rounded to x's dtype; for bf16 the
// exponential and division are the hardware's approximate ones, gelu_bias.cu); 16-byte packs when
// cols and pointers allow, any size.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/common/dtype.h"

namespace albion::kernels {

struct GeluBiasParams {
  const void* input = nullptr;        // x
  const float* bias = nullptr;        // [cols]
  const void* grad_output = nullptr;  // backward only
  void* output = nullptr;             // forward: y; backward: dz (not aliasing the inputs)
  float* grad_bias = nullptr;         // backward: [cols] fp32, or nullptr for dz alone
  float* partials = nullptr;          // backward with grad_bias: [gelu_bias_grad_segments(rows), cols] scratch
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  DType dtype = DType::kFloat32;
};

// How many row segments the backward splits the rows into for dbias (sizes the partials).
std::int64_t gelu_bias_grad_segments(std::int64_t rows);

void launch_gelu_bias_forward(const GeluBiasParams& params, cudaStream_t stream);
void launch_gelu_bias_backward(const GeluBiasParams& params, cudaStream_t stream);

// CPU references in T (float, or double for finite-difference tests); bias in T too. grad_bias
// (may be null) gets the column sums of grad_input, accumulated in double.
template <typename T>
void gelu_bias_forward_reference(const T* input, const T* bias, T* output, std::int64_t rows, std::int64_t cols);
template <typename T>
void gelu_bias_backward_reference(const T* grad_output, const T* input, const T* bias, T* grad_input, T* grad_bias,
                                  std::int64_t rows, std::int64_t cols);

}  // namespace albion::kernels
