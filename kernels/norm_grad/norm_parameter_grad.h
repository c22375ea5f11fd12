// File: kernels/norm_grad/norm_parameter_grad.h
// The per-column parameter gradients of LayerNorm (weight and bias) and RMSNorm (weight), one call
// for CPU and CUDA tensors: CUDA (fp32, bf16) runs norm_parameter_grad.cu on the current stream,
// CPU (fp32, bf16, fp64) the reference. The norms' autograd backward uses it.
#pragma once

#include <ATen/ATen.h>

#include <utility>

namespace albion::kernels {

// grad_output and input [..., cols], contiguous, same dtype and device; mean (undefined for
// RMSNorm) and rstd: one value per row in the statistics' dtype (fp32; fp64 for fp64 input).
// Returns {d_weight, d_bias} [cols] in the statistics' dtype; d_bias undefined unless with_bias.
std::pair<at::Tensor, at::Tensor> norm_parameter_grads(const at::Tensor& grad_output, const at::Tensor& input,
                                                       const at::Tensor& mean, const at::Tensor& rstd, bool with_bias);

}  // namespace albion::kernels
