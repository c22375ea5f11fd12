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
// the rows fit its registers (reading dy and x once), else a second kernel sums it.
std::pair<at::Tensor, at::Tensor> rmsnorm_backward(const at::Tensor& grad_output, const at::Tensor& input,
                                                   const at::Tensor& weight, const at::Tensor& inv_rms,
                                                   bool weight_gradient);

}  // namespace albion::kernels
