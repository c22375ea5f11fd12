// File: kernels/rope/rope.cu
// Rotary embedding: one thread per rotated pair, grid-stride over batch x seq x heads x d/2, so any
// shape works and the two loads of a pair are each coalesced across a warp. Reference:
// rope_ref.cpp. Test: tests/kernels/rope_test.cpp.
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdint>

#include "kernels/common/block_reduce.cuh"
#include "kernels/common/cuda_check.h"
#include "kernels/rope/rope.cuh"
#include "runtime/base/check.h"

namespace albion::kernels {
namespace {

template <typename T>
__global__ void rope_kernel(const T* input, T* output, const float* __restrict__ cos, const float* __restrict__ sin,
                            std::int64_t seq, std::int64_t heads, std::int64_t head_dim, float direction,
                            std::int64_t pairs) {
  const std::int64_t half = head_dim / 2;
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t p = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; p < pairs; p += stride) {
    const std::int64_t i = p % half;
    const std::int64_t row = p / half;                // (b * seq + t) * heads + h
    const std::int64_t t = (row / heads) % seq;
    const float c = cos[t * head_dim + i];
    const float s = direction * sin[t * head_dim + i];
    const std::int64_t base = row * head_dim;
    const float x1 = to_float(input[base + i]);
    const float x2 = to_float(input[base + i + half]);
    output[base + i] = from_float<T>(x1 * c - x2 * s);
    output[base + i + half] = from_float<T>(x2 * c + x1 * s);
  }
}

}  // namespace

void launch_rope(const RopeParams& p, cudaStream_t stream) {
  ALBION_CHECK(p.head_dim > 0 && p.head_dim % 2 == 0, "rope: head_dim ", p.head_dim, " must be even");
  const std::int64_t pairs = p.batch * p.seq * p.heads * (p.head_dim / 2);
  if (pairs == 0) return;
  constexpr int kThreads = 256;
  const auto blocks = static_cast<unsigned>(std::clamp<std::int64_t>((pairs + kThreads - 1) / kThreads, 1, 65535));
  switch (p.dtype) {
    case DType::kFloat32:
      rope_kernel<float><<<blocks, kThreads, 0, stream>>>(static_cast<const float*>(p.input),
                                                          static_cast<float*>(p.output), p.cos, p.sin, p.seq,
                                                          p.heads, p.head_dim, p.direction, pairs);
      break;
    case DType::kBFloat16:
      rope_kernel<__nv_bfloat16><<<blocks, kThreads, 0, stream>>>(
          static_cast<const __nv_bfloat16*>(p.input), static_cast<__nv_bfloat16*>(p.output), p.cos, p.sin, p.seq,
          p.heads, p.head_dim, p.direction, pairs);
      break;
  }
  ALBION_CUDA_CHECK(cudaGetLastError());
}

}  // namespace albion::kernels
