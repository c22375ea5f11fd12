// File: kernels/rmsnorm/rmsnorm.h
// RMSNorm for the runtime: one call for CPU and CUDA tensors. CUDA tensors (fp32, bf16) run the
// fused kernels (rmsnorm.cu) on the current stream; CPU tensors (fp32, bf16, fp64) run the
// reference (rmsnorm_ref.cpp). input [..., hidden] and weight [hidden]: same device and dtype,
// contiguous.
#pragma once

#include <ATen/ATen.h>

#include <utility>

namespace albion::kernels {

// Differentiable: autograd runs rmsnorm_backward.
at::Tensor rmsnorm(const at::Tensor& input, const at::Tensor& weight, double eps);

// {input + residual, rmsnorm of that sum}, a residual branch's add before the next norm in the
// norm's kernels (Note [The residual add in the norm], kernels/layernorm/layernorm_torch.cpp); the
// reference adds, then normalises. residual: input's shape, in a dtype add_rmsnorm_takes. The sum
// comes out in input's dtype. Differentiable in all three tensors.
std::pair<at::Tensor, at::Tensor> add_rmsnorm(const at::Tensor& input, const at::Tensor& residual,
                                              const at::Tensor& weight, double eps);
// The residual dtypes add_rmsnorm takes: input's, or bf16 for fp32 input (a bf16 product's output
// added to an fp32 stream under autocast).
bool add_rmsnorm_takes(at::ScalarType input, at::ScalarType residual);

// Returns y with input's shape and dtype.
at::Tensor rmsnorm_forward(const at::Tensor& input, const at::Tensor& weight, double eps);

// As above, writing into `output` (same shape, dtype and device as input, contiguous).
void rmsnorm_forward_out(at::Tensor& output, const at::Tensor& input, const at::Tensor& weight,
                         double eps);

// The forward with its statistics: {y, 1/rms per row} (fp32; fp64 for fp64 input).
std::pair<at::Tensor, at::Tensor> rmsnorm_forward_with_stats(const at::Tensor& input, const at::Tensor& weight,
                                                            double eps);
// The gradients from the forward's statistics: {d_input, d_weight}, d_weight in the statistics'
// dtype and undefined unless weight_gradient. The CUDA kernel sums d_weight in d_input's pass where
// the rows fit its registers (reading dy and x once), else a second kernel sums it. `grad_sum`
// (optional, input's dtype): input's gradient from another reader, added to d_input (add_rmsnorm's
// sum).
std::pair<at::Tensor, at::Tensor> rmsnorm_backward(const at::Tensor& grad_output, const at::Tensor& input,
                                                   const at::Tensor& weight, const at::Tensor& inv_rms,
                                                   bool weight_gradient, const at::Tensor& grad_sum = at::Tensor());

}  // namespace albion::kernels
