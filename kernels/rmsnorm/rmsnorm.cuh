// File: kernels/rmsnorm/rmsnorm.cuh
// RMSNorm over the last dimension: y = x / sqrt(mean(x^2) + eps) * weight, r = 1 / sqrt(...).
// Backward, with g = weight * dy:  dx = r g - r^3 x mean(g x);  dweight = sum over rows of dy x r
// (the kernel computes dx per row from the saved r and, for rows held in registers, can sum
// dweight in the same pass: see RmsNormBackwardParams; else the torch layer sums it apart).
// Layout: `rows` contiguous rows of `cols` elements; weight has `cols` elements; x, weight and y
// share one dtype (fp32 or bf16), or y (and dy) is bf16 beside fp32 x and weight; statistics
// accumulate in fp32. `inv_rms` (optional, fp32, one per row) keeps 1/rms for the backward pass.
// Optionally the residual add before the norm, s = x + r, in the same pass (residual, sum,
// grad_sum: Note [The residual add in the norm], kernels/layernorm/layernorm_torch.cpp), and y
// written once for each matrix product that reads it, their gradients summed in the backward pass
// (further_outputs, further_grad_outputs: Note [One operand per product], rmsnorm_torch.cpp).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/common/dtype.h"

namespace albion::kernels {

// The most copies of y a forward pass writes, and of dy a backward pass reads: Llama's query, key
// and value projections read one norm's output, and with LoRA adapters each adapter reads it too.
constexpr int kMaxNormOutputs = 6;

struct RmsNormForwardParams {
  const void* input = nullptr;
  const void* weight = nullptr;
  void* output = nullptr;
  float* inv_rms = nullptr;  // may be null
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  float eps = 1e-6f;
  DType dtype = DType::kFloat32;
  // Optional: a residual r (in x's dtype, or bf16 beside fp32 x: bf16_residual) added to x first;
  // the kernel writes s = x + r to `sum` (in x's dtype, rounded as torch's add rounds) and
  // normalises s, not x.
  const void* residual = nullptr;
  void* sum = nullptr;
  bool bf16_residual = false;
  // fp32 x only: y in bf16, rounded once as a matrix product's cast would round it.
  bool bf16_output = false;
  // Optional, with bf16_output: further copies of y, one per further reader; null past the last.
  void* further_outputs[kMaxNormOutputs - 1] = {};
};

void launch_rmsnorm_forward(const RmsNormForwardParams& params, cudaStream_t stream);

struct RmsNormBackwardParams {
  const void* grad_output = nullptr;
  const void* input = nullptr;
  const void* weight = nullptr;
  const float* inv_rms = nullptr;  // from the forward pass
  void* grad_input = nullptr;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  DType dtype = DType::kFloat32;
  // Optional, where rmsnorm_backward_weight_segments allows it: the weight's gradient summed in the
  // same pass, which then reads dy and x once for both gradients. Block b takes row segment b of
  // weight_segments and writes its rows' sums to weight_partials[b, :]; a second launch adds the
  // segments in order (deterministic) into grad_weight.
  float* grad_weight = nullptr;      // [cols]; nullptr: not summed here
  float* weight_partials = nullptr;  // [weight_segments, cols] scratch
  std::int64_t weight_segments = 0;
  // Optional: x is then s, and s's own gradient (in x's dtype, from s's other reader) is added to
  // dx, rounded as autograd's sum of the two would round.
  const void* grad_sum = nullptr;
  // fp32 x only: dy in bf16 (the forward's bf16_output), widened exactly.
  bool bf16_grad_output = false;
  // Optional, with bf16_grad_output: the gradients of the forward's further outputs, in its order;
  // dy is then (grad_output + further[0]) + further[1], summed in fp32 as autograd sums the
  // gradients of fp32 y's casts. Null past the last.
  const void* further_grad_outputs[kMaxNormOutputs - 1] = {};
};

void launch_rmsnorm_backward(const RmsNormBackwardParams& params, cudaStream_t stream);

// Row segments for summing the weight's gradient in launch_rmsnorm_backward's pass, on a device of
// `multiprocessors` (0: unknown, as on the CPU emulator): as many as the device runs at once. 0
// where the pass cannot sum it (rows too long for registers, or not in 16-byte packs).
std::int64_t rmsnorm_backward_weight_segments(const RmsNormBackwardParams& params, int multiprocessors);

// CPU references: plain loops in T (float, with bf16 inputs upcast by the torch layer so GPU
// results are compared against the same rounded inputs; double for finite-difference tests).
template <typename T>
void rmsnorm_forward_reference(const T* input, const T* weight, T* output, T* inv_rms, std::int64_t rows,
                               std::int64_t cols, T eps);
template <typename T>
void rmsnorm_backward_reference(const T* grad_output, const T* input, const T* weight, const T* inv_rms,
                                T* grad_input, std::int64_t rows, std::int64_t cols);

}  // namespace albion::kernels
