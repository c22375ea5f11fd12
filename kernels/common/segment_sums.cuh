// File: kernels/common/segment_sums.cuh
// Column sums over rows in two steps, for kernels whose block (x, y) reads kPackLanes consecutive
// packs of kVec columns (threadIdx.x) of every row of row segment y, kRowLanes rows at a time
// (threadIdx.y), and keeps kVec running sums per thread:
//   1. add_row_lanes: the block adds its row lanes' sums and writes one row of fp32 partials
//      [segments, cols] for its columns;
//   2. add_segments_kernel: out[c] = sum over s of partials[s * cols + c], in segment order
//      (deterministic), launched with segment_sum_blocks(cols) blocks of kSegmentSumThreads from
//      the .cu file that owns step 1 (launches stay in .cu files, where the CPU emulation's
//      translator sees them).
#pragma once

#include <cstdint>

namespace albion::kernels {

// Called by every thread of the block. `sums` are this thread's kVec column sums; thread y == 0
// of an in-range pack lane writes the block's totals to `out` (its columns' kVec partials).
template <int kVec, int kRowLanes, int kPackLanes>
__device__ __forceinline__ void add_row_lanes(float (&sums)[kVec], float* __restrict__ out, bool in_range) {
  __shared__ float lanes[kRowLanes][kVec][kPackLanes];  // [k][lane]: consecutive lanes, distinct banks
#pragma unroll
  for (int k = 0; k < kVec; ++k) lanes[threadIdx.y][k][threadIdx.x] = sums[k];
  __syncthreads();
  if (threadIdx.y == 0 && in_range) {
    for (int lane = 1; lane < kRowLanes; ++lane) {
#pragma unroll
      for (int k = 0; k < kVec; ++k) sums[k] += lanes[lane][k][threadIdx.x];
    }
#pragma unroll
    for (int k = 0; k < kVec; ++k) out[k] = sums[k];
  }
  __syncthreads();  // `lanes` is shared by every call with these parameters: a next call waits
}

constexpr int kSegmentSumThreads = 256;

// A template, so that every .cu file that launches it may define it.
template <typename Unused = void>
__global__ void add_segments_kernel(const float* __restrict__ partials, std::int64_t segments, std::int64_t cols,
                                    float* __restrict__ out) {
  const std::int64_t c = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  float sum = 0.0f;
  for (std::int64_t s = 0; s < segments; ++s) sum += partials[s * cols + c];
  out[c] = sum;
}

inline unsigned segment_sum_blocks(std::int64_t cols) {
  return static_cast<unsigned>((cols + kSegmentSumThreads - 1) / kSegmentSumThreads);
}

}  // namespace albion::kernels
