// File: kernels/common/segment_sums.cuh
// Column sums over rows in two steps, for kernels whose block (x, y) reads kPackLanes consecutive
// packs of kVec columns (threadIdx.x) of every row of row segment y, kRowLanes rows at a time
// (threadIdx.y), and keeps kVec running sums per thread:
//   1. add_row_lanes: the block adds its row lanes' sums and writes one row of fp32 partials
//      [segments, cols] for its columns;
//   2. add_segments_kernel: out[c] = sum over s of partials[s * cols + c], in a fixed order
//      (deterministic), launched with segment_sum_grid(cols) and segment_sum_block() from the .cu
//      file that owns step 1 (launches stay in .cu files, where the CPU emulation's translator
//      sees them).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace albion::kernels {

// Called by every thread of the block. `sums` are this thread's kVec column sums; thread y == 0
// of an in-range pack lane adds the row lanes' sums in lane order and writes them to `out` (its
// columns' kVec partials; not used, and may be null, where !in_range).
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

// Step 2 runs blocks of kSegmentColumns x kSegmentLanes threads: lane y adds segments y,
// y + kSegmentLanes, ... of its column, then the lanes are added in order (deterministic), so
// hundreds of segments are not one thread's serial loop.
constexpr int kSegmentColumns = 32;
constexpr int kSegmentLanes = 8;

// A template, so that every .cu file that launches it may define it.
template <typename Unused = void>
__global__ void add_segments_kernel(const float* __restrict__ partials, std::int64_t segments, std::int64_t cols,
                                    float* __restrict__ out) {
  const std::int64_t c = static_cast<std::int64_t>(blockIdx.x) * kSegmentColumns + threadIdx.x;
  float sum[1] = {0.0f};
  if (c < cols) {
    for (std::int64_t s = threadIdx.y; s < segments; s += kSegmentLanes) sum[0] += partials[s * cols + c];
  }
  add_row_lanes<1, kSegmentLanes, kSegmentColumns>(sum, c < cols ? out + c : nullptr, c < cols);
}

inline dim3 segment_sum_grid(std::int64_t cols) {
  return dim3(static_cast<unsigned>((cols + kSegmentColumns - 1) / kSegmentColumns));
}
inline dim3 segment_sum_block() { return dim3(kSegmentColumns, kSegmentLanes); }

}  // namespace albion::kernels
