// File: kernels/layernorm/layernorm.h
// LayerNorm for the runtime: CUDA tensors (fp32, bf16) run the kernels of layernorm.cu; CPU
// tensors (fp32, bf16, fp64) run the reference. input [..., hidden]; weight and bias [hidden] of
// input's dtype and device; all contiguous.
#pragma once

#include <ATen/ATen.h>

#include <tuple>

namespace albion::kernels {

// Differentiable in input, weight and bias.
at::Tensor layernorm(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& bias, double eps);

// {y, mean, rstd}; the statistics are fp32 (fp64 for fp64 input), one per row.
std::tuple<at::Tensor, at::Tensor, at::Tensor> layernorm_forward_with_stats(const at::Tensor& input,
                                                                            const at::Tensor& weight,
                                                                            const at::Tensor& bias, double eps);
at::Tensor layernorm_backward_input(const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& weight,
                                    const at::Tensor& mean, const at::Tensor& rstd);

}  // namespace albion::kernels
