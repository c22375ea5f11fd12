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

// One (batch, position) row of heads x head_dim elements per block iteration: the position and
// its table rows are fixed for the block, so each pair costs one 32-bit division (head, index)
// instead of three 64-bit ones.
template <typename T>
__global__ void rope_kernel(const T* input, T* output, const float* __restrict__ cos, const float* __restrict__ sin,
                            std::int64_t positions, std::int64_t seq, int heads, int head_dim, float direction) {
  const int half = head_dim / 2;
  const int pairs_per_position = heads * half;
  for (std::int64_t position = blockIdx.x; position < positions; position += gridDim.x) {
    const std::int64_t t = position % seq;
    const float* cos_row = cos + t * head_dim;
    const float* sin_row = sin + t * head_dim;
    const std::int64_t row_base = position * heads * head_dim;
    for (int j = threadIdx.x; j < pairs_per_position; j += blockDim.x) {
      const int h = j / half;
      const int i = j - h * half;
      const std::int64_t base = row_base + static_cast<std::int64_t>(h) * head_dim;
      const float c = cos_row[i];
      const float s = direction * sin_row[i];
      // In place is safe: this thread reads the pair before it writes it, and no one else touches it.
      const float x1 = to_float(input[base + i]);
      const float x2 = to_float(input[base + i + half]);
      output[base + i] = from_float<T>(x1 * c - x2 * s);
      output[base + i + half] = from_float<T>(x2 * c + x1 * s);
    }
  }
}

}  // namespace

void launch_rope(const RopeParams& p, cudaStream_t stream) {
  ALBION_CHECK(p.head_dim >= 0 && p.head_dim % 2 == 0, "rope: head_dim ", p.head_dim, " must be even");
  ALBION_CHECK(p.heads * p.head_dim <= 0x7fffffff, "rope: ", p.heads, " heads x ", p.head_dim,
               " dimensions exceed 32-bit indexing within a position");
  const std::int64_t positions = p.batch * p.seq;
  if (positions == 0 || p.heads == 0 || p.head_dim == 0) return;
  constexpr int kThreads = 128;
  const auto blocks = static_cast<unsigned>(std::min<std::int64_t>(positions, 0x7fffffff));
  const auto heads = static_cast<int>(p.heads);
  const auto head_dim = static_cast<int>(p.head_dim);
  switch (p.dtype) {
    case DType::kFloat32:
      rope_kernel<float><<<blocks, kThreads, 0, stream>>>(static_cast<const float*>(p.input),
                                                          static_cast<float*>(p.output), p.cos, p.sin, positions,
                                                          p.seq, heads, head_dim, p.direction);
      break;
    case DType::kBFloat16:
      rope_kernel<__nv_bfloat16><<<blocks, kThreads, 0, stream>>>(
          static_cast<const __nv_bfloat16*>(p.input), static_cast<__nv_bfloat16*>(p.output), p.cos, p.sin,
          positions, p.seq, heads, head_dim, p.direction);
      break;
  }
  ALBION_CUDA_CHECK(cudaGetLastError());
}

}  // namespace albion::kernels
