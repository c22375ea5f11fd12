// File: kernels/rope/rope.cu
// Rotary embedding: one thread per kVec rotated pairs (16-byte packs of each half of a head when
// head_dim / 2 is a whole number of packs and the pointers are aligned; single pairs otherwise),
// a block per position (block-stride), so any shape works and each load is coalesced across a
// warp. Reference: rope_ref.cpp. Tests: tests/kernels/rope_test.cpp, and on the CPU emulator
// tests/kernels/emulated/rope_emulated_test.cpp.
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdint>

#include "kernels/common/block_reduce.cuh"
#include "kernels/common/cuda_check.h"
#include "kernels/rope/rope.cuh"
#include "runtime/base/check.h"

namespace albion::kernels {
namespace {

// kVec consecutive floats of a table row: 16-byte loads when kVec is a multiple of 4 (the launcher
// then guarantees alignment), single loads otherwise.
template <int kVec>
__device__ __forceinline__ void load_floats(const float* __restrict__ source, float (&out)[kVec]) {
  if constexpr (kVec % 4 == 0) {
#pragma unroll
    for (int q = 0; q < kVec / 4; ++q) {
      const float4 f = reinterpret_cast<const float4*>(source)[q];
      out[4 * q] = f.x, out[4 * q + 1] = f.y, out[4 * q + 2] = f.z, out[4 * q + 3] = f.w;
    }
  } else {
#pragma unroll
    for (int k = 0; k < kVec; ++k) out[k] = source[k];
  }
}

// One (batch, position) row of heads x head_dim elements per block iteration: the position and
// its table rows are fixed for the block, so each unit of kVec pairs costs one 32-bit division
// (head, index) instead of three 64-bit ones. A unit is kVec consecutive elements of each half of
// a head: two 16-byte packs of x, kVec cos and kVec sin (kVec = 1 where the layout does not allow
// packs).
template <typename T, int kVec>
__global__ void rope_kernel(const T* input, T* output, const float* __restrict__ cos, const float* __restrict__ sin,
                            std::int64_t positions, std::int64_t seq, int heads, int head_dim, float direction) {
  using P = Pack<T, kVec>;
  const int half = head_dim / 2;
  const int units_per_head = half / kVec;
  const int units_per_position = heads * units_per_head;
  for (std::int64_t position = blockIdx.x; position < positions; position += gridDim.x) {
    const std::int64_t t = position % seq;
    const float* cos_row = cos + t * head_dim;
    const float* sin_row = sin + t * head_dim;
    const std::int64_t row_base = position * heads * head_dim;
    for (int j = threadIdx.x; j < units_per_position; j += blockDim.x) {
      const int h = j / units_per_head;
      const int i = (j - h * units_per_head) * kVec;
      const std::int64_t base = row_base + static_cast<std::int64_t>(h) * head_dim + i;
      float c[kVec], s[kVec];
      load_floats<kVec>(cos_row + i, c);
      load_floats<kVec>(sin_row + i, s);
      // In place is safe: this thread reads both packs before it writes them, and no one else
      // touches them.
      const P x1 = *reinterpret_cast<const P*>(input + base);
      const P x2 = *reinterpret_cast<const P*>(input + base + half);
      P y1, y2;
#pragma unroll
      for (int k = 0; k < kVec; ++k) {
        const float a = to_float(x1.values[k]), b = to_float(x2.values[k]), sk = direction * s[k];
        y1.values[k] = from_float<T>(a * c[k] - b * sk);
        y2.values[k] = from_float<T>(b * c[k] + a * sk);
      }
      *reinterpret_cast<P*>(output + base) = y1;
      *reinterpret_cast<P*>(output + base + half) = y2;
    }
  }
}

template <typename T>
void launch_typed(const RopeParams& p, std::int64_t positions, cudaStream_t stream) {
  constexpr int kVec = 16 / sizeof(T);
  constexpr int kThreads = 128;
  const auto blocks = static_cast<unsigned>(std::min<std::int64_t>(positions, 0x7fffffff));
  const auto heads = static_cast<int>(p.heads);
  const auto head_dim = static_cast<int>(p.head_dim);
  const auto* x = static_cast<const T*>(p.input);
  auto* y = static_cast<T*>(p.output);
  // Each half of a head a whole number of packs; the tables' rows (head_dim floats) then start
  // 16-byte aligned too.
  const bool vectorised = (head_dim / 2) % kVec == 0 && aligned16(x) && aligned16(y) && aligned16(p.cos) &&
                          aligned16(p.sin);
  if (vectorised) {
    rope_kernel<T, kVec><<<blocks, kThreads, 0, stream>>>(x, y, p.cos, p.sin, positions, p.seq, heads, head_dim,
                                                          p.direction);
  } else {
    rope_kernel<T, 1><<<blocks, kThreads, 0, stream>>>(x, y, p.cos, p.sin, positions, p.seq, heads, head_dim,
                                                       p.direction);
  }
  ALBION_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void launch_rope(const RopeParams& p, cudaStream_t stream) {
  ALBION_CHECK(p.head_dim >= 0 && p.head_dim % 2 == 0, "rope: head_dim ", p.head_dim, " must be even");
  ALBION_CHECK(p.heads * p.head_dim <= 0x7fffffff, "rope: ", p.heads, " heads x ", p.head_dim,
               " dimensions exceed 32-bit indexing within a position");
  const std::int64_t positions = p.batch * p.seq;
  if (positions == 0 || p.heads == 0 || p.head_dim == 0) return;
  switch (p.dtype) {
    case DType::kFloat32: launch_typed<float>(p, positions, stream); break;
    case DType::kBFloat16: launch_typed<__nv_bfloat16>(p, positions, stream); break;
  }
}

}  // namespace albion::kernels
