// File: kernels/gelu/gelu_bias.h
// gelu_tanh(x + bias) for the runtime (GPT-2's MLP after its first matrix product), one call for
// CPU and CUDA tensors. x [..., cols] contiguous, fp32 or bf16 (CPU also fp64); bias [cols] on the
// same device, any floating dtype (read as fp32; fp64 with fp64 x).
#pragma once

#include <ATen/ATen.h>

#include <utility>

namespace albion::kernels {

// Differentiable in x and bias.
at::Tensor gelu_bias(const at::Tensor& x, const at::Tensor& bias);

// Without autograd.
at::Tensor gelu_bias_forward(const at::Tensor& x, const at::Tensor& bias);
// d(loss)/dx (= d(loss)/d(x + bias)); the bias gradient is its sum over rows.
at::Tensor gelu_bias_backward_input(const at::Tensor& grad_output, const at::Tensor& x, const at::Tensor& bias);
// {d(loss)/dx, d(loss)/dbias}: on CUDA in one pass over memory; dbias in bias's dtype, summed in
// at least fp32.
std::pair<at::Tensor, at::Tensor> gelu_bias_backward(const at::Tensor& grad_output, const at::Tensor& x,
                                                     const at::Tensor& bias);

}  // namespace albion::kernels
