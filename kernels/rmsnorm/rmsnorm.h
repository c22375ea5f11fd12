// File: kernels/rmsnorm/rmsnorm.h
// RMSNorm for the runtime: one call for CPU and CUDA tensors. CUDA tensors run the fused kernel
// (rmsnorm.cu) on the current stream; CPU tensors run the reference (rmsnorm_ref.cpp).
#pragma once

#include <ATen/ATen.h>

namespace albion::kernels {

// input [..., hidden], weight [hidden], same device and dtype (fp32 or bf16), contiguous.
// Returns y with input's shape and dtype.
at::Tensor rmsnorm_forward(const at::Tensor& input, const at::Tensor& weight, double eps);

// As above, writing into `output` (same shape, dtype and device as input, contiguous).
void rmsnorm_forward_out(at::Tensor& output, const at::Tensor& input, const at::Tensor& weight,
                         double eps);

}  // namespace albion::kernels
