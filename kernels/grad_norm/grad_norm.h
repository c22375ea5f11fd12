// File: kernels/grad_norm/grad_norm.h
// The squared global L2 norm of many tensors, for gradient clipping: CUDA tensors go through the
// multi-tensor launch (grad_norm.cu), CPU tensors through the reference. fp32 or bf16, contiguous,
// all on one device; mixed dtypes are fine.
//
//   const double norm = std::sqrt(kernels::squared_norm(gradients).item<double>());
#pragma once

#include <ATen/ATen.h>

#include <vector>

#include "kernels/grad_norm/grad_norm.cuh"

namespace albion::kernels {

// A 0-dim fp64 tensor on the tensors' device (CPU when there are none); on CUDA nothing waits for
// it until the caller reads it.
at::Tensor squared_norm(const std::vector<at::Tensor>& tensors);

}  // namespace albion::kernels
