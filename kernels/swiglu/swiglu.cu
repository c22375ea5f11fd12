// File: kernels/swiglu/swiglu.cu
// SwiGLU forward and backward, element-wise: a grid-stride loop over 16-byte packs, then a scalar
// loop over the tail (and over everything when a pointer is not 16-byte aligned). Reference:
// swiglu_ref.cpp. Test: tests/kernels/swiglu_test.cpp.
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdint>

#include "kernels/common/block_reduce.cuh"
#include "kernels/common/cuda_check.h"
#include "kernels/swiglu/swiglu.cuh"
#include "runtime/base/check.h"

namespace albion::kernels {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + __expf(-x)); }

template <typename T, int kVec>
__global__ void swiglu_forward_kernel(const T* __restrict__ gate, const T* __restrict__ up, T* __restrict__ out,
                                      std::int64_t packs, std::int64_t numel) {
  using P = Pack<T, kVec>;
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  const std::int64_t first = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  for (std::int64_t p = first; p < packs; p += stride) {
    const P g = reinterpret_cast<const P*>(gate)[p];
    const P u = reinterpret_cast<const P*>(up)[p];
    P o;
#pragma unroll
    for (int k = 0; k < kVec; ++k) {
      const float x = to_float(g.values[k]);
      o.values[k] = from_float<T>(x * sigmoid(x) * to_float(u.values[k]));
    }
    reinterpret_cast<P*>(out)[p] = o;
  }
  for (std::int64_t i = packs * kVec + first; i < numel; i += stride) {
    const float x = to_float(gate[i]);
    out[i] = from_float<T>(x * sigmoid(x) * to_float(up[i]));
  }
}

template <typename T, int kVec>
__global__ void swiglu_backward_kernel(const T* __restrict__ grad_out, const T* __restrict__ gate,
                                       const T* __restrict__ up, T* __restrict__ grad_gate,
                                       T* __restrict__ grad_up, std::int64_t packs, std::int64_t numel) {
  using P = Pack<T, kVec>;
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  const std::int64_t first = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  for (std::int64_t p = first; p < packs; p += stride) {
    const P d = reinterpret_cast<const P*>(grad_out)[p];
    const P g = reinterpret_cast<const P*>(gate)[p];
    const P u = reinterpret_cast<const P*>(up)[p];
    P dg;
    P du;
#pragma unroll
    for (int k = 0; k < kVec; ++k) {
      const float x = to_float(g.values[k]);
      const float s = sigmoid(x);
      const float dy = to_float(d.values[k]);
      du.values[k] = from_float<T>(dy * x * s);
      dg.values[k] = from_float<T>(dy * to_float(u.values[k]) * s * (1.0f + x * (1.0f - s)));
    }
    reinterpret_cast<P*>(grad_gate)[p] = dg;
    reinterpret_cast<P*>(grad_up)[p] = du;
  }
  for (std::int64_t i = packs * kVec + first; i < numel; i += stride) {
    const float x = to_float(gate[i]);
    const float s = sigmoid(x);
    const float dy = to_float(grad_out[i]);
    grad_up[i] = from_float<T>(dy * x * s);
    grad_gate[i] = from_float<T>(dy * to_float(up[i]) * s * (1.0f + x * (1.0f - s)));
  }
}

unsigned blocks_for(std::int64_t units) {
  // Enough blocks to fill the GPU several times over; the grid-stride loop covers the rest.
  return static_cast<unsigned>(std::clamp<std::int64_t>((units + kThreads - 1) / kThreads, 1, 65535));
}

template <typename T>
void forward_typed(const SwiGluForwardParams& p, cudaStream_t stream) {
  constexpr int kVec = 16 / sizeof(T);
  const bool vectorised = aligned16(p.gate) && aligned16(p.up) && aligned16(p.out);
  const std::int64_t packs = vectorised ? p.numel / kVec : 0;
  const auto* gate = static_cast<const T*>(p.gate);
  const auto* up = static_cast<const T*>(p.up);
  auto* out = static_cast<T*>(p.out);
  if (vectorised) {
    swiglu_forward_kernel<T, kVec><<<blocks_for(packs + kVec), kThreads, 0, stream>>>(gate, up, out, packs, p.numel);
  } else {
    swiglu_forward_kernel<T, 1><<<blocks_for(p.numel), kThreads, 0, stream>>>(gate, up, out, 0, p.numel);
  }
  ALBION_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void backward_typed(const SwiGluBackwardParams& p, cudaStream_t stream) {
  constexpr int kVec = 16 / sizeof(T);
  const bool vectorised = aligned16(p.grad_out) && aligned16(p.gate) && aligned16(p.up) &&
                          aligned16(p.grad_gate) && aligned16(p.grad_up);
  const std::int64_t packs = vectorised ? p.numel / kVec : 0;
  const auto* grad_out = static_cast<const T*>(p.grad_out);
  const auto* gate = static_cast<const T*>(p.gate);
  const auto* up = static_cast<const T*>(p.up);
  auto* grad_gate = static_cast<T*>(p.grad_gate);
  auto* grad_up = static_cast<T*>(p.grad_up);
  if (vectorised) {
    swiglu_backward_kernel<T, kVec><<<blocks_for(packs + kVec), kThreads, 0, stream>>>(
        grad_out, gate, up, grad_gate, grad_up, packs, p.numel);
  } else {
    swiglu_backward_kernel<T, 1><<<blocks_for(p.numel), kThreads, 0, stream>>>(grad_out, gate, up, grad_gate,
                                                                                grad_up, 0, p.numel);
  }
  ALBION_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void launch_swiglu_forward(const SwiGluForwardParams& params, cudaStream_t stream) {
  ALBION_CHECK(params.numel >= 0, "swiglu: negative size ", params.numel);
  if (params.numel == 0) return;
  switch (params.dtype) {
    case DType::kFloat32: forward_typed<float>(params, stream); break;
    case DType::kBFloat16: forward_typed<__nv_bfloat16>(params, stream); break;
  }
}

void launch_swiglu_backward(const SwiGluBackwardParams& params, cudaStream_t stream) {
  ALBION_CHECK(params.numel >= 0, "swiglu: negative size ", params.numel);
  if (params.numel == 0) return;
  switch (params.dtype) {
    case DType::kFloat32: backward_typed<float>(params, stream); break;
    case DType::kBFloat16: backward_typed<__nv_bfloat16>(params, stream); break;
  }
}

}  // namespace albion::kernels
