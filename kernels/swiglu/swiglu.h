// File: kernels/swiglu/swiglu.h
// SwiGLU for the runtime: out = silu(gate) * up, one call for CPU and CUDA tensors. CUDA tensors
// (fp32, bf16) run the fused kernels of swiglu.cu on the current stream; CPU tensors (fp32, bf16,
// fp64) run the reference. gate and up: same shape, dtype and device, contiguous.
#pragma once

#include <ATen/ATen.h>

#include <utility>

namespace albion::kernels {

// Differentiable (autograd calls swiglu_backward).
at::Tensor swiglu(const at::Tensor& gate, const at::Tensor& up);

// The two halves, without autograd (tests, benchmarks).
at::Tensor swiglu_forward(const at::Tensor& gate, const at::Tensor& up);
// Returns {grad_gate, grad_up}.
std::pair<at::Tensor, at::Tensor> swiglu_backward(const at::Tensor& grad_out, const at::Tensor& gate,
                                                  const at::Tensor& up);

}  // namespace albion::kernels
