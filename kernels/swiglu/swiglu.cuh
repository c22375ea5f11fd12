// File: kernels/swiglu/swiglu.cuh
// SwiGLU, the gated activation of Llama's MLP, element-wise over two equal-shaped tensors:
//   out = silu(gate) * up,   silu(g) = g * sigmoid(g)
// and its backward:
//   d_up   = d_out * silu(gate)
//   d_gate = d_out * up * sigmoid(gate) * (1 + gate * (1 - sigmoid(gate)))
// One kernel each way (eager PyTorch runs 2 forward and ~6 backward kernels, each a full pass over
// memory). fp32 or bf16 tensors, fp32 arithmetic, 16-byte packs with a scalar tail, any size.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/common/dtype.h"

namespace albion::kernels {

struct SwiGluForwardParams {
  const void* gate = nullptr;
  const void* up = nullptr;
  void* out = nullptr;
  std::int64_t numel = 0;
  DType dtype = DType::kFloat32;
};

struct SwiGluBackwardParams {
  const void* grad_out = nullptr;
  const void* gate = nullptr;
  const void* up = nullptr;
  void* grad_gate = nullptr;
  void* grad_up = nullptr;
  std::int64_t numel = 0;
  DType dtype = DType::kFloat32;
};

void launch_swiglu_forward(const SwiGluForwardParams& params, cudaStream_t stream);
void launch_swiglu_backward(const SwiGluBackwardParams& params, cudaStream_t stream);

// CPU references: plain loops in T (float for the runtime, double for finite-difference tests).
template <typename T>
void swiglu_forward_reference(const T* gate, const T* up, T* out, std::int64_t numel);
template <typename T>
void swiglu_backward_reference(const T* grad_out, const T* gate, const T* up, T* grad_gate, T* grad_up,
                               std::int64_t numel);

}  // namespace albion::kernels
